// SPDX-License-Identifier: MIT
/*
 * live/secret_churn.h - three memories for secrets on the running kernel,
 * behind one small interface, for ua-secret-churn (secret_churn.cpp):
 *
 *   cache    the library's secret cache (cache/unmapped_cache.h) over
 *            mapping/secretmem_backend.h: 2 MiB chunks of one memfd_secret
 *            file, whose pages leave the kernel's direct map as they first
 *            fault in and are then kept and reused;
 *   naive    one memfd_secret file per secret, what a thin secret wrapper
 *            does: memfd_secret(), ftruncate() to whole pages, mmap(), the
 *            secret written (the fault takes its page out of the direct
 *            map), and munmap() on free, which releases the file and gives
 *            the page back (secretmem_free_folio()). The fd is closed right
 *            after mmap() (the mapping keeps the file): 64 MiB of secrets
 *            are ~32 K files, above RLIMIT_NOFILE's hard limit here (20000);
 *            the kernel sees the same faults and releases either way;
 *   openssl  OpenSSL's secure heap (crypto/mem_sec.c): one mmap()ed arena,
 *            mlock()ed, MADV_DONTDUMP, guard pages, a buddy allocator of
 *            power-of-two blocks inside; the arena stays in the direct map.
 *
 * Each is made for a live set of `mib` MiB (create()), answers alloc(size)
 * with writable memory or nullptr, takes it back with free(), and says how
 * many 4 KiB pages it holds from the kernel (pages_held()). Nothing throws
 * out of alloc/free; creation failures are the reason in words.
 */
#pragma once

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>

#include <unmapped_alloc/unmapped_alloc.h>

#if defined(UA_HAVE_OPENSSL)
#include <openssl/crypto.h>
#endif

namespace ua::live {

class secret_memory {
public:
	virtual ~secret_memory() = default;
	virtual const char *name() const noexcept = 0;
	virtual void *alloc(std::size_t size) noexcept = 0;
	virtual void free(void *p, std::size_t size) noexcept = 0;
	virtual std::size_t pages_held() const noexcept = 0;
	/* What the memory did, in words, for the table ("" when nothing to say). */
	virtual std::string note() const { return {}; }
};

/* The library's secret cache over one memfd_secret file four times the live set (64 MiB at least). */
class cache_secrets final : public secret_memory {
public:
	static std::unique_ptr<cache_secrets> create(std::size_t mib, std::string *why)
	{
		const std::uint64_t pages = std::max<std::uint64_t>(64, 4 * mib) << (20 - page_shift);
		auto s = std::unique_ptr<cache_secrets>(new cache_secrets(pages));
		if (!s->m_.backend.ok()) {
			*why = "secretmem backend: " + s->m_.backend.init_reason();
			return nullptr;
		}
		return s;
	}
	const char *name() const noexcept override { return "cache"; }
	void *alloc(std::size_t size) noexcept override
	{
		auto r = c_.alloc(size);
		return r.ok() ? r.value : nullptr;
	}
	void free(void *p, std::size_t) noexcept override { (void)c_.free(p); }
	std::size_t pages_held() const noexcept override
	{
		long long n = m_.backend.resident_pages();
		return n < 0 ? 0 : std::size_t(n);
	}
	std::string note() const override
	{
		auto s = c_.stats();
		return "peak " + std::to_string(s.peak_chunks) + " chunks, " + std::to_string(s.source.acquired) +
		       " acquired, " + std::to_string(s.source.released) + " released";
	}

private:
	static cache_config config()
	{
		cache_config cfg = secret_cache_config("secrets");
		cfg.nr_shards = 1; /* one thread */
		return cfg;
	}
	explicit cache_secrets(std::uint64_t pages) : m_(pages), c_(m_, config()) {}
	machine<secretmem_backend> m_;
	unmapped_cache<secretmem_backend> c_;
};

/* One memfd_secret file per secret (see the top). */
class naive_secrets final : public secret_memory {
public:
	static std::unique_ptr<naive_secrets> create(std::size_t, std::string *why)
	{
		std::string r = secretmem_backend::unavailable_reason();
		if (!r.empty()) {
			*why = r;
			return nullptr;
		}
		return std::unique_ptr<naive_secrets>(new naive_secrets());
	}
	~naive_secrets() override
	{
		for (auto &[p, len] : live_)
			::munmap(p, len);
	}
	const char *name() const noexcept override { return "naive"; }
	void *alloc(std::size_t size) noexcept override
	{
		const std::size_t len = align_up(size, page_size);
		int fd = int(::syscall(__NR_memfd_secret, 0u));
		if (fd < 0)
			return nullptr;
		void *p = MAP_FAILED;
		if (::ftruncate(fd, off_t(len)) == 0)
			p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		::close(fd);
		if (p == MAP_FAILED)
			return nullptr;
		try {
			live_.emplace(p, len);
		} catch (...) {
			::munmap(p, len);
			return nullptr;
		}
		pages_ += len >> page_shift;
		return p;
	}
	void free(void *p, std::size_t) noexcept override
	{
		auto it = live_.find(p);
		if (it == live_.end())
			return;
		::munmap(p, it->second); /* the last reference: the file and its page go */
		pages_ -= it->second >> page_shift;
		live_.erase(it);
	}
	std::size_t pages_held() const noexcept override { return pages_; }

private:
	naive_secrets() = default;
	std::unordered_map<void *, std::size_t> live_;
	std::size_t pages_ = 0;
};

#if defined(UA_HAVE_OPENSSL)
/*
 * OpenSSL's secure heap: CRYPTO_secure_malloc_init(size, minsize) maps and
 * locks an arena of `size` bytes (a power of two) once; blocks are powers of
 * two of at least minsize (16 here, the smallest secret). The arena is four
 * times the live set rounded up to a power of two, since a buddy heap of
 * uniformly sized secrets holds up to twice their bytes.
 */
class openssl_secrets final : public secret_memory {
public:
	static std::unique_ptr<openssl_secrets> create(std::size_t mib, std::string *why)
	{
		std::size_t size = std::size_t(1) << 20;
		while (size < 4 * (mib << 20))
			size <<= 1;
		if (CRYPTO_secure_malloc_initialized()) {
			*why = "the secure heap is already initialised in this process";
			return nullptr;
		}
		if (CRYPTO_secure_malloc_init(size, 16) == 0) {
			*why = "CRYPTO_secure_malloc_init failed (mmap or mlock: RLIMIT_MEMLOCK?)";
			return nullptr;
		}
		return std::unique_ptr<openssl_secrets>(new openssl_secrets(size));
	}
	~openssl_secrets() override { CRYPTO_secure_malloc_done(); }
	const char *name() const noexcept override { return "openssl"; }
	void *alloc(std::size_t size) noexcept override { return CRYPTO_secure_malloc(size, __FILE__, __LINE__); }
	void free(void *p, std::size_t) noexcept override { CRYPTO_secure_free(p, __FILE__, __LINE__); }
	/* The whole arena is mlock()ed at init: every page is held from the start. */
	std::size_t pages_held() const noexcept override { return size_ >> page_shift; }

private:
	explicit openssl_secrets(std::size_t size) : size_(size) {}
	std::size_t size_;
};
#endif

/* The memory named `name` ("cache", "naive", "openssl") for a live set of mib MiB, or nullptr and why. */
inline std::unique_ptr<secret_memory> make_secret_memory(const std::string &name, std::size_t mib, std::string *why)
{
	if (name == "cache")
		return cache_secrets::create(mib, why);
	if (name == "naive")
		return naive_secrets::create(mib, why);
	if (name == "openssl") {
#if defined(UA_HAVE_OPENSSL)
		return openssl_secrets::create(mib, why);
#else
		*why = "built without OpenSSL (libssl-dev)";
		return nullptr;
#endif
	}
	*why = "unknown memory '" + name + "' (cache, naive, openssl)";
	return nullptr;
}

}  // namespace ua::live
