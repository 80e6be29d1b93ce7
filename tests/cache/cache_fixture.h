// Machines for the cache tests: every behaviour both backends support is
// tested on both (TEST_CASE_TEMPLATE over sim_machine and real_machine).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <support/sanitizers.h>
#include <unmapped_alloc/unmapped_alloc.h>

namespace ua_test {

/* ua_test::sanitized, ua_test::tsan, UA_TEST_ASAN/UA_TEST_TSAN: tests/support/sanitizers.h. */

/* A simulated 4 GiB machine. */
struct sim_machine {
	using backend = ua::sim_direct_map;
	static constexpr std::uint64_t default_pages = std::uint64_t{1} << 20;
	static std::unique_ptr<ua::machine<backend>> make(std::uint64_t pages = default_pages)
	{
		return std::make_unique<ua::machine<backend>>(pages);
	}
};

/* A real 64 MiB machine (memfd memory, huge-page direct-map view). */
struct real_machine {
	using backend = ua::linux_backend;
	static constexpr std::uint64_t default_pages = std::uint64_t{16384};
	static std::unique_ptr<ua::machine<backend>> make(std::uint64_t pages = default_pages)
	{
		auto m = std::make_unique<ua::machine<backend>>(pages);
		UA_CHECK(m->backend.ok(), "real backend construction failed");
		return m;
	}
};

/* Reads n bytes at an alias address when the backend's aliases are real memory. */
template <class Backend>
bool read_alias(const void *p, void *out, std::size_t n)
{
	if constexpr (Backend::dereferenceable) {
		std::memcpy(out, p, n);
		return true;
	} else {
		(void)p, (void)out, (void)n;
		return false;
	}
}

/* Fingerprint of a cache's state, for "changes nothing" checks. */
template <class Cache>
std::string fingerprint(const Cache &c)
{
	auto s = c.stats();
	return std::to_string(s.live_bytes) + "/" + std::to_string(s.live_count) + "/" + std::to_string(s.chunks) + "/" +
	       std::to_string(s.spare_chunks) + "/" + std::to_string(s.source.dm_changes) + "|" + c.check_consistency();
}

/* A machine aged until no two free chunks are adjacent (scatter_free_chunks()). */
struct scattered_chunks {
	std::vector<ua::pfn_t> held;  /* order-9 blocks taken for the ageing: free_blocks() gives them back */
	std::vector<ua::pfn_t> freed; /* the free chunks, no two adjacent */
};

/*
 * Ages m as a long-running machine whose free memory is all scattered:
 * takes every order-9 block a cache could use (ZONE_NORMAL), then gives
 * back every other one by address, so between any two free chunks lies a
 * taken one and no block larger than a chunk is free.
 */
template <class Machine>
scattered_chunks scatter_free_chunks(Machine &m)
{
	scattered_chunks s;
	typename Machine::guard g(m.lock);
	for (;;) {
		auto r = m.pages.alloc_pages(ua::chunk_order, ua::gfp_normal_only);
		if (!r.ok())
			break;
		s.held.push_back(r.value);
	}
	std::sort(s.held.begin(), s.held.end());
	std::vector<ua::pfn_t> keep;
	for (std::size_t i = 0; i < s.held.size(); i++) {
		if (i % 2 == 0) {
			UA_CHECK(m.pages.free_pages(s.held[i], ua::chunk_order) == ua::error::ok, "cannot free an ageing block");
			s.freed.push_back(s.held[i]);
		} else {
			keep.push_back(s.held[i]);
		}
	}
	s.held = std::move(keep);
	return s;
}

/* Gives the blocks scatter_free_chunks() kept back to the page allocator. */
template <class Machine>
void free_blocks(Machine &m, const scattered_chunks &s)
{
	typename Machine::guard g(m.lock);
	for (ua::pfn_t p : s.held)
		UA_CHECK(m.pages.free_pages(p, ua::chunk_order) == ua::error::ok, "cannot free an ageing block");
}

}  // namespace ua_test
