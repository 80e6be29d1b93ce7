// SPDX-License-Identifier: MIT
/*
 * mapping/memory_map.h - a machine's physical memory map: which frames are
 * RAM, which are reserved, and where the holes are.
 *
 * The firmware hands the kernel such a map (the E820 table on x86,
 * arch/x86/kernel/e820.c); the kernel turns its RAM ranges into memblock
 * memory, builds the direct map over them (init_mem_mapping() in
 * arch/x86/mm/init.c) and frees them to the page allocator
 * (memblock_free_all()), minus what memblock reserved on the way (the
 * kernel image, page 0, the low 1 MiB). Both the simulated page allocator
 * (phys/) and the simulated direct map (sim/) are built from one of these,
 * so the two agree on where memory is.
 *
 * Ranges are in 4 KiB frames, sorted, and never overlap. Frames in no range
 * are holes (the PCI window below 4 GiB, say): no struct page, never mapped,
 * never allocated. A range that is not page aligned in the firmware table is
 * rounded inward for RAM (memblock keeps only whole pages) and outward for
 * reserved ranges, as e820__memblock_setup() and memblock do.
 *
 * Three ways to get one:
 *   flat(n)            n frames of RAM from pfn 0: tests, and the real
 *                      backend, whose "physical memory" is one memfd;
 *   x86_vm(ram, l)     the layout an x86-64 VM's firmware gives a guest with
 *                      `ram` frames of RAM (page 0 and the legacy 640 KiB -
 *                      1 MiB area reserved, RAM up to the low limit, the
 *                      32-bit PCI hole up to 4 GiB, the rest above 4 GiB);
 *   parse_iomem(text)  the top-level lines of /proc/iomem ("System RAM",
 *                      "Reserved", anything else is not RAM), as this
 *                      machine's kernel reports its own map.
 */
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "../config.h"
#include "../error.h"
#include "text_lines.h"
#include "types.h"

namespace ua {

enum class mem_type : std::uint8_t {
	ram,      /* E820_TYPE_RAM: usable memory */
	reserved, /* E820_TYPE_RESERVED and firmware ranges: present, never given to the page allocator */
};

struct mem_range {
	pfn_t start = 0; /* first frame */
	pfn_t end = 0;   /* one past the last frame */
	mem_type type = mem_type::ram;

	constexpr std::uint64_t nr_pages() const noexcept { return end - start; }
	constexpr bool operator==(const mem_range &) const = default;
};

/* Where the firmware of an x86-64 VM puts memory (see memory_map::x86_vm). */
struct x86_vm_layout {
	/*
	 * RAM below 4 GiB ends here; the PCI hole follows up to 4 GiB. 3 GiB is
	 * what this project's machines report (/proc/iomem: System RAM up to
	 * 0xbfffffff, then RAM from 0x100000000), as QEMU's i440fx machine does
	 * for guests of 3.5 GiB or more; QEMU's q35 machine uses 2 GiB for
	 * guests of 2.75 GiB or more.
	 */
	std::uint64_t low_limit_bytes = std::uint64_t{3} << 30;
};

class memory_map {
public:
	memory_map() = default;

	/* n frames of RAM at [0, n). */
	static memory_map flat(std::uint64_t nr_pages)
	{
		memory_map m;
		if (nr_pages)
			m.ranges_.push_back({0, nr_pages, mem_type::ram});
		return m;
	}

	/*
	 * An x86-64 VM with ram_pages frames of RAM: page 0 reserved (the kernel
	 * reserves it, e820__memblock_setup() / trim_bios_range()), RAM to
	 * 0x9fc00 (whole pages: to 0x9f000), the legacy area [0x9fc00, 1 MiB)
	 * reserved (EBDA, VGA, BIOS ROM), RAM from 1 MiB to the low limit, then
	 * the rest from 4 GiB. Fewer than 1 MiB of RAM is bad_flags.
	 */
	static result<memory_map> x86_vm(std::uint64_t ram_pages, x86_vm_layout l = {})
	{
		constexpr pfn_t mib = (std::uint64_t{1} << 20) >> page_shift;
		constexpr pfn_t four_gib = (std::uint64_t{4} << 30) >> page_shift;
		const pfn_t low_limit = l.low_limit_bytes >> page_shift;
		if (ram_pages < mib || l.low_limit_bytes % page_size || low_limit <= mib || low_limit > four_gib)
			return result<memory_map>::failure(error::bad_flags);
		memory_map m;
		const pfn_t ebda = 0x9fc00 >> page_shift; /* 0x9f: the partial page is not RAM */
		m.ranges_.push_back({0, 1, mem_type::reserved});
		m.ranges_.push_back({1, ebda, mem_type::ram});
		m.ranges_.push_back({ebda, mib, mem_type::reserved});
		/* RAM below 1 MiB counts toward the guest's size, as the firmware reports it. */
		std::uint64_t left = ram_pages - mib;
		const std::uint64_t low = std::min<std::uint64_t>(left, low_limit - mib);
		m.ranges_.push_back({mib, mib + low, mem_type::ram});
		left -= low;
		if (left)
			m.ranges_.push_back({four_gib, four_gib + left, mem_type::ram});
		return {std::move(m), error::ok};
	}

	/*
	 * /proc/iomem's top-level lines ("start-end : name", hexadecimal, end
	 * inclusive; nested lines are indented and skipped). "System RAM" is
	 * RAM, rounded inward to whole pages; every other top-level range that
	 * overlaps no RAM is reserved, rounded outward, except PCI windows and
	 * device ranges above the end of RAM, which are holes as far as the page
	 * allocator and the direct map are concerned. On a malformed line,
	 * returns bad_flags and, if line_no is given, the line's number (1-based).
	 */
	static result<memory_map> parse_iomem(std::string_view text, std::size_t *line_no = nullptr)
	{
		memory_map m;
		std::size_t no = 0;
		while (!text.empty()) {
			std::string_view line = next_line(text);
			no++;
			if (line.empty() || line.front() == ' ')
				continue;
			std::uint64_t lo = 0, hi = 0;
			const std::size_t dash = line.find('-'), colon = line.find(" : ");
			if (dash == std::string_view::npos || colon == std::string_view::npos || dash > colon ||
			    !parse_hex(line.substr(0, dash), lo) || !parse_hex(line.substr(dash + 1, colon - dash - 1), hi) ||
			    hi < lo) {
				if (line_no)
					*line_no = no;
				return result<memory_map>::failure(error::bad_flags);
			}
			const std::string_view name = line.substr(colon + 3);
			const std::uint64_t end = hi + 1;
			if (name == "System RAM") {
				const pfn_t s = (lo + page_size - 1) >> page_shift, e = end >> page_shift;
				if (s < e)
					m.ranges_.push_back({s, e, mem_type::ram});
			} else if (name.find("PCI") == std::string_view::npos) {
				m.ranges_.push_back({lo >> page_shift, (end + page_size - 1) >> page_shift, mem_type::reserved});
			}
		}
		if (!m.normalise()) {
			if (line_no)
				*line_no = 0;
			return result<memory_map>::failure(error::bad_flags);
		}
		return {std::move(m), error::ok};
	}

	const std::vector<mem_range> &ranges() const noexcept { return ranges_; }

	/* Frames of RAM (what the firmware reports; memblock reservations come on top). */
	std::uint64_t ram_pages() const noexcept
	{
		std::uint64_t n = 0;
		for (const mem_range &r : ranges_)
			n += r.type == mem_type::ram ? r.nr_pages() : 0;
		return n;
	}

	/* One past the highest RAM frame: the kernel's max_pfn. */
	pfn_t end_pfn() const noexcept
	{
		pfn_t e = 0;
		for (const mem_range &r : ranges_)
			e = r.type == mem_type::ram ? std::max(e, r.end) : e;
		return e;
	}

	/* The RAM ranges, in address order. */
	std::vector<frame_range> ram() const
	{
		std::vector<frame_range> v;
		for (const mem_range &r : ranges_)
			if (r.type == mem_type::ram)
				v.push_back({r.start, r.nr_pages()});
		return v;
	}

	bool is_ram(pfn_t pfn) const noexcept
	{
		auto it = std::upper_bound(ranges_.begin(), ranges_.end(), pfn,
					   [](pfn_t p, const mem_range &r) { return p < r.end; });
		return it != ranges_.end() && it->start <= pfn && it->type == mem_type::ram;
	}

private:
	static bool parse_hex(std::string_view s, std::uint64_t &v) noexcept
	{
		if (s.empty())
			return false;
		auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
		return ec == std::errc{} && p == s.data() + s.size();
	}

	/*
	 * Sorts the ranges and drops the parts of reserved ranges that RAM
	 * covers (a reserved range rounded outward may touch a RAM page). False
	 * when two RAM ranges overlap.
	 */
	bool normalise()
	{
		std::sort(ranges_.begin(), ranges_.end(), [](const mem_range &a, const mem_range &b) {
			return a.start != b.start ? a.start < b.start : a.type < b.type;
		});
		std::vector<mem_range> out;
		for (const mem_range &r : ranges_) {
			mem_range c = r;
			if (!out.empty() && c.start < out.back().end) {
				if (c.type == mem_type::ram && out.back().type == mem_type::ram)
					return false;
				if (c.type == mem_type::reserved) {
					c.start = out.back().end;
				} else {
					/* RAM wins over a reserved range rounded outward onto it. */
					out.back().end = c.start;
					if (out.back().end <= out.back().start)
						out.pop_back();
				}
			}
			if (c.start < c.end)
				out.push_back(c);
		}
		ranges_ = std::move(out);
		return true;
	}

	std::vector<mem_range> ranges_;
};

}  // namespace ua
