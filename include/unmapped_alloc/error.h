// SPDX-License-Identifier: MIT
/*
 * error.h - the error contract shared by every layer.
 *
 * No allocation path throws. Every fallible operation returns an ua::error (or
 * an ua::result<T> carrying one), and a failed operation changes nothing: the
 * structure it was called on is exactly as before the call. Caller mistakes
 * (bad size, bad alignment, bad pointer) map to EINVAL; lack of memory maps to
 * ENOMEM, so a caller can always tell the two apart with to_errno().
 */
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdlib>

namespace ua {

enum class error : int {
	ok = 0,
	zero_size,        /* size 0 requested */
	too_large,        /* size above what this layer serves, or a write running past the end of its allocation */
	bad_alignment,    /* alignment not a power of two, or above the chunk size */
	null_pointer,     /* operation that needs a pointer got nullptr */
	not_live,         /* pointer inside a chunk but not in a live allocation: double free? */
	interior_pointer, /* pointer inside a live allocation but not its start */
	foreign_pointer,  /* pointer not inside any chunk of this allocator */
	bad_chunk,        /* chunk base misaligned, already present, or not empty on removal */
	no_space,         /* the arena has no room: the owner must add a chunk and retry */
	no_memory,        /* the page allocator or the backend is out of memory */
	backend_failure,  /* a backend operation failed; it was rolled back */
	bad_flags,        /* unknown or contradictory flags */
	not_supported,    /* operation not supported by this cache or backend */
	forked,           /* a cache created before fork() used in the child (cache/fork.h) */
};

/* The errno a kernel-style caller would see: EINVAL for caller mistakes, ENOMEM for lack of memory. */
constexpr int to_errno(error e) noexcept
{
	switch (e) {
	case error::ok: return 0;
	case error::no_space:
	case error::no_memory: return ENOMEM;
	case error::backend_failure: return EIO;
	case error::not_supported: return EOPNOTSUPP;
	default: return EINVAL;
	}
}

constexpr const char *describe(error e) noexcept
{
	switch (e) {
	case error::ok: return "success";
	case error::zero_size: return "size is zero";
	case error::too_large: return "size is larger than this allocator serves, or a write runs past the end of its allocation";
	case error::bad_alignment: return "alignment is not a power of two or exceeds the chunk size";
	case error::null_pointer: return "pointer is null";
	case error::not_live: return "pointer is not a live allocation (double free or never allocated)";
	case error::interior_pointer: return "pointer is inside a live allocation but not its start";
	case error::foreign_pointer: return "pointer does not belong to this allocator";
	case error::bad_chunk: return "chunk is misaligned, already present, or not empty";
	case error::no_space: return "no free extent fits; a chunk must be added";
	case error::no_memory: return "out of memory";
	case error::backend_failure: return "mapping backend operation failed (rolled back)";
	case error::bad_flags: return "unknown or contradictory flags";
	case error::not_supported: return "operation not supported here";
	case error::forked: return "cache inherited across fork(): the child must create its own";
	}
	return "unknown error";
}

/*
 * Where the library calls something that may throw (a standard container
 * growing, std::bad_alloc), it catches and returns no_memory, changing
 * nothing. UA_TRY / UA_CATCH_ALL spell that so the headers also build with
 * -fno-exceptions, where there is nothing to catch (a failed allocation
 * aborts there, as the standard library does):
 *
 *   UA_TRY { v.push_back(x); } UA_CATCH_ALL { return error::no_memory; }
 */
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#define UA_TRY try
#define UA_CATCH_ALL catch (...)
#define UA_THROW(e) throw e
#else
#define UA_TRY if (true)
#define UA_CATCH_ALL else
#define UA_THROW(e) ::std::abort() /* the one place the library throws (secret_allocator.h): abort as new does */
#endif

/* A value or an error; value is meaningful only when err == error::ok. */
template <class T>
struct [[nodiscard]] result {
	T value{};
	error err = error::ok;

	constexpr bool ok() const noexcept { return err == error::ok; }
	constexpr explicit operator bool() const noexcept { return ok(); }
	static constexpr result failure(error e) noexcept { return result{T{}, e}; }
};

}  // namespace ua
