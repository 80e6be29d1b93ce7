// SPDX-License-Identifier: MIT
/* Tests for bench/validation/sim_machine.h: a machine built from a memory map never hands out a hole. */
#include <doctest/doctest.h>

#include <vector>

#include "validation/sim_machine.h"

using namespace ua;
using namespace ua::validation;

namespace {

constexpr std::uint64_t gib_pages = pud_size / page_size;

memory_map vm_map(std::uint64_t gib)
{
	auto m = memory_map::x86_vm(gib * gib_pages);
	REQUIRE(m.ok());
	return std::move(m.value);
}

}  // namespace

TEST_CASE("the frames that are not RAM are never handed out")
{
	const memory_map mm = vm_map(5); /* RAM up to 3 GiB, the PCI hole, RAM from 4 to 6 GiB */
	sim_machine_build b = build_sim_machine({mm, sim_config{}, false, {}, kernel_page_alloc(2)});
	REQUIRE(b.error.empty());
	sim_machine &m = *b.m;
	CHECK(m.nr_pages() == mm.end_pfn());
	CHECK(b.hole_pages == mm.end_pfn() - mm.ram_pages());
	CHECK(m.nr_free_pages() == mm.ram_pages());
	sim_machine::guard g(m.lock);
	CHECK(m.pages.nr_cpus() == 2);
	CHECK(m.pages.zone(zone_type::normal).wmark_min > 0); /* the kernel's watermarks */

	/* Everything the allocator gives, taken: all of it RAM, all but what the watermarks keep. */
	std::uint64_t got = 0;
	bool all_ram = true;
	for (unsigned order : {9u, 0u}) {
		for (;;) {
			auto r = m.pages.alloc_pages(order, gfp_any_zone);
			if (!r.ok())
				break;
			for (pfn_t p = r.value; p < r.value + (pfn_t{1} << order); p++)
				all_ram = all_ram && mm.is_ram(p);
			got += std::uint64_t{1} << order;
		}
	}
	CHECK(all_ram);
	CHECK(got <= mm.ram_pages());
	CHECK(got > mm.ram_pages() * 95 / 100); /* min watermarks and lowmem_reserve keep about 2% here */
}

TEST_CASE("a memory map without RAM is refused")
{
	sim_machine_build b = build_sim_machine({memory_map{}, sim_config{}, false, {}});
	CHECK_FALSE(b.error.empty());
	CHECK(b.m == nullptr);
}

TEST_CASE("an aged machine has less free memory than a fresh one, and the same holes")
{
	const memory_map mm = vm_map(2);
	sim_machine_build f = build_sim_machine({mm, sim_config{}, false, {}});
	sim_machine_build a = build_sim_machine({mm, sim_config{}, true, {}});
	REQUIRE(f.error.empty());
	REQUIRE(a.error.empty());
	CHECK(a.hole_pages == f.hole_pages);
	CHECK(a.m->nr_free_pages() < f.m->nr_free_pages());
}
