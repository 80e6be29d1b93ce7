// Machines for the cache tests: every behaviour both backends support is
// tested on both (TEST_CASE_TEMPLATE over sim_machine and real_machine).
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include <unmapped_alloc/unmapped_alloc.h>

namespace ua_test {

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

}  // namespace ua_test
