// SPDX-License-Identifier: MIT
/* Tests for mapping/memory_map.h: the three ways to build a memory map. */
#include <doctest/doctest.h>

#include <string>

#include <unmapped_alloc/mapping/memory_map.h>

using ua::mem_range;
using ua::mem_type;
using ua::memory_map;

namespace {

constexpr std::uint64_t gib_pages = (std::uint64_t{1} << 30) >> ua::page_shift;

/* The top of /proc/iomem on this project's machines (24 GiB x86-64 VM, Linux 6.18), nested lines included. */
const char *const project_iomem =
	"00000000-00000fff : Reserved\n"
	"00001000-0009fbff : System RAM\n"
	"0009fc00-000fffff : Reserved\n"
	"  000f0000-000fffff : System ROM\n"
	"00100000-bfffffff : System RAM\n"
	"  01000000-022784c7 : Kernel code\n"
	"c0001000-eebfffff : PCI Bus 0000:00\n"
	"eec00000-febfffff : Reserved\n"
	"  eec00000-eecfffff : PCI ECAM 0000 [bus 00-00]\n"
	"fec00000-fec003ff : IOAPIC 0\n"
	"100000000-63fffffff : System RAM\n"
	"4000000000-7fffffffff : PCI Bus 0000:00\n";

}  // namespace

TEST_CASE("memory_map: flat is one RAM range")
{
	memory_map m = memory_map::flat(1000);
	REQUIRE(m.ranges().size() == 1);
	CHECK(m.ranges()[0] == mem_range{0, 1000, mem_type::ram});
	CHECK(m.ram_pages() == 1000);
	CHECK(m.end_pfn() == 1000);
	CHECK(m.is_ram(0));
	CHECK(m.is_ram(999));
	CHECK_FALSE(m.is_ram(1000));
	CHECK(memory_map::flat(0).ranges().empty());
}

TEST_CASE("memory_map: parse_iomem reads this machine's map: RAM rounded inward, PCI windows are holes")
{
	std::size_t line = 99;
	auto r = memory_map::parse_iomem(project_iomem, &line);
	REQUIRE(r.ok());
	const memory_map &m = r.value;
	CHECK(line == 99); /* untouched on success */
	/* page 0 reserved; RAM 0x1000-0x9fbff is pages 1..0x9e (0x9f is partial); 1 MiB-3 GiB; 4-25 GiB */
	CHECK_FALSE(m.is_ram(0));
	CHECK(m.is_ram(1));
	CHECK(m.is_ram(0x9e));
	CHECK_FALSE(m.is_ram(0x9f));
	CHECK(m.is_ram(0x100));
	CHECK(m.is_ram(3 * gib_pages - 1));
	CHECK_FALSE(m.is_ram(3 * gib_pages));
	CHECK(m.is_ram(4 * gib_pages));
	CHECK(m.end_pfn() == 25 * gib_pages);
	CHECK(m.ram_pages() == (0x9e) + (3 * gib_pages - 0x100) + 21 * gib_pages);
	/* The reserved ranges are there, the PCI bus windows are not. */
	bool reserved_hole = false, pci = false;
	for (const mem_range &x : m.ranges()) {
		reserved_hole |= x.type == mem_type::reserved && x.start == (0xeec00000 >> 12);
		pci |= x.start == (0xc0001000 >> 12) || x.start == (0x4000000000 >> 12);
	}
	CHECK(reserved_hole);
	CHECK_FALSE(pci);
}

TEST_CASE("memory_map: x86_vm of 24 GiB has the RAM of this machine's /proc/iomem")
{
	auto vm = memory_map::x86_vm(24 * gib_pages);
	auto live = memory_map::parse_iomem(project_iomem);
	REQUIRE(vm.ok());
	REQUIRE(live.ok());
	CHECK(vm.value.ram() == live.value.ram());
	CHECK(vm.value.end_pfn() == 25 * gib_pages);
}

TEST_CASE("memory_map: x86_vm below the low limit has no memory above 4 GiB; q35 puts the limit at 2 GiB")
{
	auto small = memory_map::x86_vm(2 * gib_pages);
	REQUIRE(small.ok());
	CHECK(small.value.end_pfn() == 2 * gib_pages);
	auto q35 = memory_map::x86_vm(8 * gib_pages, {.low_limit_bytes = std::uint64_t{2} << 30});
	REQUIRE(q35.ok());
	CHECK(q35.value.end_pfn() == 10 * gib_pages);
	CHECK_FALSE(q35.value.is_ram(2 * gib_pages));
	CHECK(q35.value.is_ram(4 * gib_pages));
}

TEST_CASE("memory_map: bad input is refused with the line number")
{
	std::size_t line = 0;
	CHECK(memory_map::parse_iomem("00000000-00000fff : Reserved\nnot a line\n", &line).err == ua::error::bad_flags);
	CHECK(line == 2);
	CHECK(memory_map::parse_iomem("00002000-00001000 : System RAM\n", &line).err == ua::error::bad_flags);
	CHECK(line == 1);
	CHECK(memory_map::parse_iomem("0000zz00-00001000 : System RAM\n", &line).err == ua::error::bad_flags);
	/* two RAM ranges that overlap */
	CHECK(memory_map::parse_iomem("00000000-00ffffff : System RAM\n00800000-01ffffff : System RAM\n", &line).err ==
	      ua::error::bad_flags);
	CHECK(memory_map::x86_vm(10).err == ua::error::bad_flags);
	CHECK(memory_map::x86_vm(gib_pages, {.low_limit_bytes = 5ull << 30}).err == ua::error::bad_flags);
}
