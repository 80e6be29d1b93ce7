// SPDX-License-Identifier: MIT
/*
 * userspace_heaps.h - the allocators bench/userspace_bench compares, behind
 * the heap shape of bench/rounds.h (`std::uintptr_t alloc(size)`, 0 on
 * failure; `void free(std::uintptr_t)`).
 *
 * Text (the BPF size mix, 64-byte aligned as bpf_prog_pack gives):
 *   ua_heap<B, W>     the library's cache on backend B (text or secret);
 *                     with W the program is written after each allocation
 *                     through unmapped_write() (the text_poke_copy() path);
 *   asmjit_heap<W>    asmjit's JitAllocator with kUseDualMapping (an RX and
 *                     an RW view of one memfd) and kFillUnusedMemory (freed
 *                     and new space filled with the trap pattern); with W the
 *                     program is copied through the RW view;
 *   jemalloc_heap     mallocx() / dallocx() with the thread cache, not W^X;
 *   mimalloc_heap     mi_malloc_aligned() / mi_free(), not W^X.
 * Secrets:
 *   openssl_heap      CRYPTO_secure_malloc() / CRYPTO_secure_free() (which
 *                     cleanses), on the one secure heap of the process;
 *   sodium_heap       sodium_malloc() / sodium_free() (guard pages, mlock,
 *                     canary; zeroes on free).
 * A heap that fails reports it and ends the program: a benchmark step must
 * never fail.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <unmapped_alloc/unmapped_alloc.h>

#if UA_BENCH_ASMJIT
#include <asmjit/core.h>
#endif
#if UA_BENCH_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif
#if UA_BENCH_MIMALLOC
#include <mimalloc.h>
#endif
#if UA_BENCH_OPENSSL
#include <openssl/crypto.h>
#endif
#if UA_BENCH_SODIUM
#include <sodium.h>
#endif

namespace ua::bench {

[[noreturn]] inline void heap_die(const char *who, const char *what)
{
	std::fprintf(stderr, "userspace_bench: %s: %s\n", who, what);
	std::exit(1);
}

/* The bytes every written program consists of (the mix's largest size): a recognisable non-trap pattern. */
inline const std::byte *program_bytes()
{
	static const auto buf = [] {
		auto b = std::make_unique<std::byte[]>(65536);
		for (std::size_t i = 0; i < 65536; i++)
			b[i] = std::byte(0x90 ^ (i & 0x3f));
		return b;
	}();
	return buf.get();
}

/* The library's cache with its own machine (a memfd for the real backend). */
template <class B, bool Write>
struct ua_heap {
	std::unique_ptr<ua::machine<B>> m;
	std::unique_ptr<ua::unmapped_cache<B>> c;
	std::size_t align;

	ua_heap(std::uint64_t nr_pages, ua::cache_config cfg, std::size_t al) : m(std::make_unique<ua::machine<B>>(nr_pages)), align(al)
	{
		if constexpr (requires { m->backend.ok(); })
			if (!m->backend.ok())
				heap_die(cfg.name, "cannot create the real backend");
		cfg.nr_shards = 1;
		c = std::make_unique<ua::unmapped_cache<B>>(*m, cfg);
	}
	std::uintptr_t alloc(std::size_t n)
	{
		auto r = c->alloc(n, align);
		if (!r.ok())
			heap_die(c->name(), ua::describe(r.err));
		if constexpr (Write)
			if (ua::error e = c->write(r.value, program_bytes(), n); e != ua::error::ok)
				heap_die(c->name(), ua::describe(e));
		return reinterpret_cast<std::uintptr_t>(r.value);
	}
	void free(std::uintptr_t p)
	{
		if (ua::error e = c->free(reinterpret_cast<void *>(p)); e != ua::error::ok)
			heap_die(c->name(), ua::describe(e));
	}
	/* The memory it holds: whole chunks (out of the machine's memory) and its metadata. */
	std::size_t held_bytes() const
	{
		auto st = c->stats();
		return st.chunks * ua::chunk_size + st.metadata_bytes;
	}
};

#if UA_BENCH_ASMJIT
template <bool Write>
struct asmjit_heap {
	asmjit::JitAllocator j;

	static const asmjit::JitAllocator::CreateParams *params()
	{
		static const asmjit::JitAllocator::CreateParams p = [] {
			asmjit::JitAllocator::CreateParams q{};
			q.options = asmjit::JitAllocatorOptions::kUseDualMapping | asmjit::JitAllocatorOptions::kFillUnusedMemory;
			return q;
		}();
		return &p;
	}
	asmjit_heap() : j(params()) {}
	std::uintptr_t alloc(std::size_t n)
	{
		void *rx = nullptr, *rw = nullptr;
		if (j.alloc(&rx, &rw, n) != asmjit::kErrorOk)
			heap_die("asmjit", "JitAllocator::alloc failed");
		if constexpr (Write)
			std::memcpy(rw, program_bytes(), n);
		return reinterpret_cast<std::uintptr_t>(rx);
	}
	void free(std::uintptr_t p)
	{
		if (j.release(reinterpret_cast<void *>(p)) != asmjit::kErrorOk)
			heap_die("asmjit", "JitAllocator::release failed");
	}
};
#endif

#if UA_BENCH_JEMALLOC
struct jemalloc_heap {
	std::size_t align;
	std::uintptr_t alloc(std::size_t n)
	{
		void *p = mallocx(n, MALLOCX_ALIGN(align));
		if (!p)
			heap_die("jemalloc", "mallocx failed");
		return reinterpret_cast<std::uintptr_t>(p);
	}
	void free(std::uintptr_t p) { dallocx(reinterpret_cast<void *>(p), 0); }
	/* Flushes this thread's cache and purges every arena, so the pages of a drained live set go back. */
	static void release_all()
	{
		mallctl("thread.tcache.flush", nullptr, nullptr, nullptr, 0);
		char name[64];
		std::snprintf(name, sizeof(name), "arena.%u.purge", unsigned(MALLCTL_ARENAS_ALL));
		mallctl(name, nullptr, nullptr, nullptr, 0);
	}
	/* jemalloc's own count of its resident pages ("stats.resident", after an epoch refresh). */
	static long long resident_bytes()
	{
		std::uint64_t epoch = 1;
		std::size_t len = sizeof(epoch);
		mallctl("epoch", &epoch, &len, &epoch, len);
		std::size_t resident = 0;
		len = sizeof(resident);
		return mallctl("stats.resident", &resident, &len, nullptr, 0) == 0 ? (long long)resident : 0;
	}
};
#endif

#if UA_BENCH_MIMALLOC
struct mimalloc_heap {
	std::size_t align;
	std::uintptr_t alloc(std::size_t n)
	{
		void *p = mi_malloc_aligned(n, align);
		if (!p)
			heap_die("mimalloc", "mi_malloc_aligned failed");
		return reinterpret_cast<std::uintptr_t>(p);
	}
	void free(std::uintptr_t p) { mi_free(reinterpret_cast<void *>(p)); }
	static void release_all() { mi_collect(true); }
};
#endif

#if UA_BENCH_OPENSSL
/*
 * The process has one secure heap: CRYPTO_secure_malloc_init() of an arena
 * of `arena` bytes (a power of two, mmap()ed with guard pages and mlock()ed)
 * whose buddy allocator hands out powers of two of at least minsize bytes.
 */
struct openssl_heap {
	openssl_heap(std::size_t arena, std::size_t minsize)
	{
		if (CRYPTO_secure_malloc_init(arena, minsize) == 0)
			heap_die("openssl", "CRYPTO_secure_malloc_init failed");
	}
	~openssl_heap()
	{
		if (!CRYPTO_secure_malloc_done())
			std::fprintf(stderr, "userspace_bench: openssl: the secure heap is still in use\n");
	}
	openssl_heap(const openssl_heap &) = delete;
	openssl_heap &operator=(const openssl_heap &) = delete;
	std::uintptr_t alloc(std::size_t n)
	{
		void *p = OPENSSL_secure_malloc(n);
		if (!p || !CRYPTO_secure_allocated(p))
			heap_die("openssl", "CRYPTO_secure_malloc failed (or fell back to malloc)");
		return reinterpret_cast<std::uintptr_t>(p);
	}
	void free(std::uintptr_t p) { OPENSSL_secure_free(reinterpret_cast<void *>(p)); }
};
#endif

#if UA_BENCH_SODIUM
struct sodium_heap {
	sodium_heap()
	{
		if (sodium_init() < 0)
			heap_die("sodium", "sodium_init failed");
	}
	std::uintptr_t alloc(std::size_t n)
	{
		void *p = sodium_malloc(n);
		if (!p)
			heap_die("sodium", "sodium_malloc failed");
		return reinterpret_cast<std::uintptr_t>(p);
	}
	void free(std::uintptr_t p) { sodium_free(reinterpret_cast<void *>(p)); }
};
#endif

}  // namespace ua::bench
