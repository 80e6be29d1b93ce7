// SPDX-License-Identifier: MIT
/*
 * The caches' secret paths over mapping/secretmem_backend.h: the secret cache
 * whose chunks are memfd_secret pages, out of the running kernel's direct
 * map. The same behaviours tests/cache/ checks on the simulated and the real
 * backend (acquire and release undo each other, secrets zeroed and secured,
 * churn within the live set, ENOMEM apart from EINVAL, standard containers),
 * plus what only this memory has: the pages the kernel took out stay with
 * the cache and are reused. Skipped with the reason where memfd_secret is
 * unavailable. Machines of 16-64 MiB: what the kernel splits for them stays
 * split until reboot (docs/live.md).
 */
#include <doctest/doctest.h>

#include "child.h"

#include <signal.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <unmapped_alloc/unmapped_alloc.h>

using namespace ua;
using secret_machine = machine<secretmem_backend>;
using ua_test::child_signal;

namespace {

bool secretmem_here()
{
	std::string why = secretmem_backend::unavailable_reason();
	if (!why.empty())
		MESSAGE("memfd_secret unavailable, case skipped: " << why);
	return why.empty();
}

/* A machine whose memory is one memfd_secret file of `pages` frames (64 MiB by default). */
std::unique_ptr<secret_machine> make_machine(std::uint64_t pages = 16384)
{
	auto m = std::make_unique<secret_machine>(pages);
	REQUIRE_MESSAGE(m->backend.ok(), m->backend.init_reason());
	return m;
}

}  // namespace

TEST_CASE("secretmem cache: acquire and release undo each other; the released run is zeroed and kept by the kernel")
{
	if (!secretmem_here())
		return;
	auto m = make_machine();
	const std::uint64_t free_before = m->pages.nr_free_pages();
	cache_config cfg = secret_cache_config();
	chunk_source<secretmem_backend> src(*m, cfg);
	auto r = src.acquire(1);
	REQUIRE(r.ok());
	chunk_run run = r.value;
	CHECK(m->backend.direct_map_state(run.pfn) == dm_state::invalid);
	CHECK(m->backend.alias_secured(run.alias));
	CHECK(m->backend.resident_pages() == long(pages_per_chunk));
	std::memset(reinterpret_cast<void *>(run.alias), 0x5a, run.bytes()); /* what a user left there */
	REQUIRE(src.release(run) == error::ok);
	CHECK(m->backend.direct_map_state(run.pfn) == dm_state::rw);
	CHECK(m->backend.stats().aliases == 0);
	CHECK(m->pages.nr_free_pages() == free_before);
	const std::byte *v = m->backend.view_address(run.pfn);
	CHECK(std::all_of(v, v + run.bytes(), [](std::byte b) { return b == std::byte{0}; }));
	/* The kernel keeps the pages out of its direct map; the next acquire of them faults nothing new. */
	CHECK(m->backend.resident_pages() == long(pages_per_chunk));
	auto again = src.acquire(1);
	REQUIRE(again.ok());
	CHECK(again.value.pfn == run.pfn);
	CHECK(m->backend.resident_pages() == long(pages_per_chunk));
	REQUIRE(src.release(again.value) == error::ok);
}

TEST_CASE("secretmem cache: secrets are zeroed when freed, locked, out of core dumps and absent in a child")
{
	if (!secretmem_here())
		return;
	auto m = make_machine();
	unmapped_cache<secretmem_backend> c(*m, secret_cache_config());
	auto r = c.alloc(128, 1, ua_zero);
	auto keep = c.alloc(64);
	REQUIRE((r.ok() && keep.ok()));
	auto a = reinterpret_cast<std::uintptr_t>(r.value);
	CHECK(m->backend.alias_prot(a) == prot::rw);
	CHECK(m->backend.alias_secured(a));
	auto fr = m->backend.alias_frames(a);
	REQUIRE(fr.has_value());
	CHECK(m->backend.direct_map_state(fr->pfn) == dm_state::invalid);
	const unsigned char *z = static_cast<const unsigned char *>(r.value);
	CHECK(std::all_of(z, z + 128, [](unsigned char b) { return b == 0; }));
	std::memset(r.value, 0x5a, 128);
	CHECK(child_signal([&] { (void)*static_cast<volatile char *>(r.value); }) == SIGSEGV);
	REQUIRE(c.free(r.value) == error::ok);
	unsigned char after[128];
	std::memcpy(after, r.value, 128);
	CHECK(std::count(after, after + 128, 0) == 128);
	REQUIRE(c.free(keep.value) == error::ok);
}

TEST_CASE("secretmem cache: churn of 16-4096 B secrets keeps its pages: the kernel's residency follows the peak, not the steps")
{
	if (!secretmem_here())
		return;
	auto m = make_machine();
	cache_config cfg = secret_cache_config();
	cfg.nr_shards = 1;
	unmapped_cache<secretmem_backend> c(*m, cfg);
	std::mt19937_64 rng(16);
	std::uniform_int_distribution<std::size_t> size(16, 4096);
	std::vector<void *> live;
	std::size_t live_bytes = 0;
	while (live_bytes < (std::size_t(2) << 20)) { /* a 2 MiB live set */
		std::size_t s = size(rng);
		auto r = c.alloc(s);
		REQUIRE(r.ok());
		std::memset(r.value, 0x33, s);
		live.push_back(r.value);
		live_bytes += s;
	}
	const long long warm = m->backend.resident_pages();
	for (int step = 0; step < 20000; step++) {
		std::size_t i = rng() % live.size();
		REQUIRE(c.free(live[i]) == error::ok);
		std::size_t s = size(rng);
		auto r = c.alloc(s);
		REQUIRE(r.ok());
		std::memset(r.value, 0x44, s);
		live[i] = r.value;
	}
	const auto st = c.stats();
	const long long resident = m->backend.resident_pages();
	INFO("resident pages " << resident << " after warm-up " << warm << ", peak chunks " << st.peak_chunks);
	/* Every page the kernel took out is one of the chunks the cache held at its peak: none beyond. */
	CHECK(resident <= (long long)(st.peak_chunks * pages_per_chunk));
	CHECK(resident >= warm);
	CHECK(st.peak_chunks <= 3); /* 2 MiB of secrets, within a chunk of their live set */
	CHECK(c.check_consistency() == "");
	for (void *p : live)
		REQUIRE(c.free(p) == error::ok);
	c.shrink();
	CHECK(c.stats().chunks == 0);
	CHECK(m->backend.resident_pages() == resident); /* still the kernel's until the file goes */
}

TEST_CASE("secretmem cache: ENOMEM is told apart from EINVAL and nothing leaks")
{
	if (!secretmem_here())
		return;
	auto m = make_machine(4096); /* 16 MiB: 8 chunks at most */
	const std::uint64_t free_before = m->pages.nr_free_pages();
	cache_config cfg = secret_cache_config();
	cfg.nr_shards = 1;
	{
		unmapped_cache<secretmem_backend> c(*m, cfg);
		std::vector<void *> v;
		result<void *> r;
		while ((r = c.alloc(chunk_size)).ok())
			v.push_back(r.value);
		CHECK(r.err == error::no_memory);
		CHECK(!v.empty());
		CHECK(c.alloc(0).err == error::zero_size);
		CHECK(c.alloc(64, 3).err == error::bad_alignment);
		for (void *p : v)
			REQUIRE(c.free(p) == error::ok);
		c.shrink();
		CHECK(c.stats().chunks == 0);
	}
	CHECK(m->pages.nr_free_pages() == free_before);
	CHECK(m->backend.stats().aliases == 0);
}

TEST_CASE("secretmem cache: text and ro caches cannot use this memory; their allocations fail cleanly")
{
	if (!secretmem_here())
		return;
	auto m = make_machine(4096);
	const std::uint64_t free_before = m->pages.nr_free_pages();
	unmapped_cache<secretmem_backend> text(*m, text_cache_config()); /* needs an rx alias: refused */
	unmapped_cache<secretmem_backend> ro(*m, ro_cache_config());     /* needs a read-only direct map: refused */
	CHECK(text.alloc(64).err == error::backend_failure);
	CHECK(ro.alloc(64).err == error::backend_failure);
	CHECK(text.stats().chunks == 0);
	CHECK(ro.stats().chunks == 0);
	CHECK(m->pages.nr_free_pages() == free_before);
	CHECK(m->backend.stats().aliases == 0);
	CHECK(m->backend.direct_map_state(0) == dm_state::rw);
}

TEST_CASE("secretmem cache: secret_allocator keeps vector and string contents in memfd_secret memory")
{
	if (!secretmem_here())
		return;
	auto m = make_machine(4096);
	unmapped_cache<secretmem_backend> secrets(*m, secret_cache_config());
	secret_allocator<std::byte, secretmem_backend> alloc(secrets);
	{
		std::vector<std::byte, secret_allocator<std::byte, secretmem_backend>> key(alloc);
		key.resize(48, std::byte{7});
		CHECK(secrets.contains(key.data()));
		using sstring = std::basic_string<char, std::char_traits<char>, secret_allocator<char, secretmem_backend>>;
		sstring pass{secret_allocator<char, secretmem_backend>(secrets)};
		pass.assign(200, 'p');
		CHECK(secrets.contains(pass.data()));
		CHECK(secrets.stats().live_count == 2);
	}
	CHECK(secrets.stats().live_count == 0);
}
