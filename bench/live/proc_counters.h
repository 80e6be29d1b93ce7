// SPDX-License-Identifier: MIT
/*
 * live/proc_counters.h - the running kernel's own figures, read from /proc.
 *
 *   /proc/vmstat       direct_map_level2_splits, direct_map_level3_splits,
 *                      direct_map_level2_collapses, direct_map_level3_collapses
 *                      (arch/x86/mm/pat/set_memory.c: split_page_count() and
 *                      collapse_page_count() count one event per large page
 *                      split or re-formed; level 2 is a 2 MiB page, level 3 a
 *                      1 GiB page)
 *   /proc/meminfo      DirectMap4k/2M/1G (kB mapped at each level), MemTotal,
 *                      MemFree, MemAvailable, Cached
 *   /proc/buddyinfo    free blocks per order (0..10) per zone
 *   /proc/zoneinfo     present and managed pages per zone (deferred_init=lazy
 *                      shows Normal's managed growing as memory is first used)
 *   /proc/vmallocinfo  vmalloc areas whose caller is bpf_prog_pack_alloc: one
 *                      per pack (512 pages on x86-64, BPF_PROG_PACK_SIZE) and
 *                      one per program larger than a pack
 *
 * Every reader takes the text and the name to report it under (as the
 * workload readers do, workload/text.h), so tests feed crafted text and a
 * fake root. A line that does not have the file's form is an error naming
 * the file and line ("/proc/vmstat:7: ..."); a counter that is absent is not
 * an error of the reader but of the caller's expectation, reported by
 * read_counters() with the name of the missing key.
 *
 * The root is /proc unless UA_LIVE_PROC_ROOT names another directory (tests,
 * and forcing the absence of a counter).
 */
#pragma once

#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "workload/op.h"
#include "workload/text.h"

namespace ua::live {

using workload::parse_result;

inline std::string proc_root()
{
	const char *r = std::getenv("UA_LIVE_PROC_ROOT");
	return r && *r ? std::string(r) : std::string("/proc");
}

/* `name value` per line (/proc/vmstat). */
inline parse_result<std::map<std::string, std::uint64_t>> parse_vmstat(std::string_view text, std::string_view file)
{
	using R = parse_result<std::map<std::string, std::uint64_t>>;
	std::map<std::string, std::uint64_t> out;
	workload::detail::line_reader lines(text);
	std::string_view line;
	while (lines.next(line)) {
		auto f = workload::detail::split_fields(line);
		if (f.empty())
			continue;
		std::uint64_t v = 0;
		if (f.size() != 2 || !workload::detail::parse_u64(f[1], v))
			return R::failure(workload::detail::at_line(file, lines.number(),
				"expected `name value`, got " + workload::detail::quote(line)));
		out[std::string(f[0])] = v;
	}
	return R{std::move(out), {}};
}

/* `Key:   value [kB]` per line (/proc/meminfo); values kept as printed (kB where the unit is kB). */
inline parse_result<std::map<std::string, std::uint64_t>> parse_meminfo(std::string_view text, std::string_view file)
{
	using R = parse_result<std::map<std::string, std::uint64_t>>;
	std::map<std::string, std::uint64_t> out;
	workload::detail::line_reader lines(text);
	std::string_view line;
	while (lines.next(line)) {
		auto f = workload::detail::split_fields(line);
		if (f.empty())
			continue;
		std::uint64_t v = 0;
		const bool unit_ok = f.size() == 2 || (f.size() == 3 && f[2] == "kB");
		if (!unit_ok || f[0].size() < 2 || f[0].back() != ':' || !workload::detail::parse_u64(f[1], v))
			return R::failure(workload::detail::at_line(file, lines.number(),
				"expected `Key: value [kB]`, got " + workload::detail::quote(line)));
		out[std::string(f[0].substr(0, f[0].size() - 1))] = v;
	}
	return R{std::move(out), {}};
}

struct zone_free {
	std::string zone;                  /* DMA, DMA32, Normal, ... */
	std::vector<std::uint64_t> blocks; /* free blocks per order, 0 up */
};

/* `Node N, zone NAME c0 c1 ... c10` per line (/proc/buddyinfo). */
inline parse_result<std::vector<zone_free>> parse_buddyinfo(std::string_view text, std::string_view file)
{
	using R = parse_result<std::vector<zone_free>>;
	std::vector<zone_free> out;
	workload::detail::line_reader lines(text);
	std::string_view line;
	while (lines.next(line)) {
		auto f = workload::detail::split_fields(line);
		if (f.empty())
			continue;
		zone_free z;
		bool ok = f.size() >= 5 && f[0] == "Node" && f[2] == "zone";
		for (std::size_t i = 4; ok && i < f.size(); i++) {
			std::uint64_t v = 0;
			ok = workload::detail::parse_u64(f[i], v);
			z.blocks.push_back(v);
		}
		if (!ok)
			return R::failure(workload::detail::at_line(file, lines.number(),
				"expected `Node N, zone NAME counts...`, got " + workload::detail::quote(line)));
		z.zone = std::string(f[3]);
		out.push_back(std::move(z));
	}
	return R{std::move(out), {}};
}

struct zone_pages {
	std::string zone;
	std::uint64_t present = 0, managed = 0, free = 0;
};

/*
 * /proc/zoneinfo: a `Node N, zone NAME` line opens a zone; inside it the
 * lines `pages free N`, `present N` and `managed N` are read, every other
 * line is left alone (the file is long and its other lines change between
 * releases). A `present` or `managed` line whose value is not a number is
 * an error, as is one before any zone.
 */
inline parse_result<std::vector<zone_pages>> parse_zoneinfo(std::string_view text, std::string_view file)
{
	using R = parse_result<std::vector<zone_pages>>;
	std::vector<zone_pages> out;
	workload::detail::line_reader lines(text);
	std::string_view line;
	while (lines.next(line)) {
		auto f = workload::detail::split_fields(line);
		if (f.empty())
			continue;
		if (f[0] == "Node") {
			if (f.size() != 4 || f[2] != "zone")
				return R::failure(workload::detail::at_line(file, lines.number(),
					"expected `Node N, zone NAME`, got " + workload::detail::quote(line)));
			out.push_back({std::string(f[3]), 0, 0, 0});
			continue;
		}
		std::uint64_t *slot = nullptr;
		std::string_view value;
		if ((f[0] == "present" || f[0] == "managed") && f.size() >= 2) {
			if (out.empty())
				return R::failure(workload::detail::at_line(file, lines.number(), "`" + std::string(f[0]) +
					"` before any `Node N, zone NAME` line"));
			slot = f[0] == "present" ? &out.back().present : &out.back().managed;
			value = f[1];
		} else if (f[0] == "pages" && f.size() >= 3 && f[1] == "free" && !out.empty()) {
			slot = &out.back().free;
			value = f[2];
		}
		if (slot && !workload::detail::parse_u64(value, *slot))
			return R::failure(workload::detail::at_line(file, lines.number(),
				"not a page count: " + workload::detail::quote(line)));
	}
	return R{std::move(out), {}};
}

struct vmalloc_packs {
	std::uint64_t packs = 0;       /* bpf_prog_pack_alloc areas of exactly pack_pages pages */
	std::uint64_t pack_pages = 0;  /* pages in them */
	std::uint64_t large = 0;       /* bpf_prog_pack_alloc areas of any other size (programs over a pack) */
	std::uint64_t large_pages = 0;
	std::vector<std::string> pack_ranges; /* each pack's `start-end` as printed (hashed unless kptr_restrict allows) */
};

inline constexpr std::uint64_t bpf_prog_pack_pages = 512; /* BPF_PROG_PACK_SIZE (2 MiB) / 4 KiB on x86-64 */

/*
 * /proc/vmallocinfo: `0xSTART-0xEND SIZE [caller] [pages=N] [flags...]` per
 * line. Only the first two fields are checked on every line (the rest varies
 * with the kind of area: ioremap, vmap, vmalloc, user); a line whose caller
 * is bpf_prog_pack_alloc must carry pages=N.
 */
inline parse_result<vmalloc_packs> parse_vmallocinfo(std::string_view text, std::string_view file)
{
	using R = parse_result<vmalloc_packs>;
	vmalloc_packs out;
	workload::detail::line_reader lines(text);
	std::string_view line;
	while (lines.next(line)) {
		auto f = workload::detail::split_fields(line);
		if (f.empty())
			continue;
		std::uint64_t size = 0;
		const bool range = f[0].size() > 2 && f[0].substr(0, 2) == "0x" && f[0].find('-') != std::string_view::npos;
		if (f.size() < 2 || !range || !workload::detail::parse_u64(f[1], size))
			return R::failure(workload::detail::at_line(file, lines.number(),
				"expected `0xSTART-0xEND SIZE ...`, got " + workload::detail::quote(line)));
		if (f.size() < 3 || f[2].substr(0, 20) != "bpf_prog_pack_alloc+")
			continue;
		std::uint64_t pages = 0;
		bool have_pages = false;
		for (std::size_t i = 3; i < f.size() && !have_pages; i++)
			if (f[i].substr(0, 6) == "pages=")
				have_pages = workload::detail::parse_u64(f[i].substr(6), pages);
		if (!have_pages)
			return R::failure(workload::detail::at_line(file, lines.number(),
				"bpf_prog_pack_alloc area without `pages=N`: " + workload::detail::quote(line)));
		if (pages == bpf_prog_pack_pages) {
			out.packs++;
			out.pack_pages += pages;
			out.pack_ranges.emplace_back(f[0]);
		} else {
			out.large++;
			out.large_pages += pages;
		}
	}
	return R{std::move(out), {}};
}

/* The figures a live run compares before, during and after. */
struct kernel_counters {
	std::uint64_t l2_splits = 0, l3_splits = 0, l2_collapses = 0, l3_collapses = 0;
	std::uint64_t dm_4k_kb = 0, dm_2m_kb = 0, dm_1g_kb = 0;
	std::uint64_t mem_total_kb = 0, mem_free_kb = 0, mem_available_kb = 0, cached_kb = 0;
};

inline constexpr const char *vmstat_keys[] = {"direct_map_level2_splits", "direct_map_level3_splits",
					       "direct_map_level2_collapses", "direct_map_level3_collapses"};
inline constexpr const char *meminfo_keys[] = {"DirectMap4k", "DirectMap2M", "DirectMap1G", "MemTotal",
						"MemFree",     "MemAvailable", "Cached"};

namespace detail {
inline parse_result<std::string> read_proc(const std::string &root, const char *name)
{
	return workload::detail::read_text_file(root + "/" + name);
}
}  // namespace detail

/*
 * Reads /proc/vmstat and /proc/meminfo under root; the error names the file
 * and line of a malformed line, or the first key that is missing ("/proc/
 * vmstat has no direct_map_level2_splits").
 */
inline parse_result<kernel_counters> read_counters(const std::string &root = proc_root())
{
	using R = parse_result<kernel_counters>;
	auto vt = detail::read_proc(root, "vmstat");
	if (!vt)
		return R::failure(vt.error);
	auto v = parse_vmstat(vt.value, root + "/vmstat");
	if (!v)
		return R::failure(v.error);
	auto mt = detail::read_proc(root, "meminfo");
	if (!mt)
		return R::failure(mt.error);
	auto m = parse_meminfo(mt.value, root + "/meminfo");
	if (!m)
		return R::failure(m.error);
	for (const char *k : vmstat_keys)
		if (!v.value.count(k))
			return R::failure(root + "/vmstat has no " + k);
	for (const char *k : meminfo_keys)
		if (!m.value.count(k))
			return R::failure(root + "/meminfo has no " + k);
	kernel_counters c;
	c.l2_splits = v.value["direct_map_level2_splits"];
	c.l3_splits = v.value["direct_map_level3_splits"];
	c.l2_collapses = v.value["direct_map_level2_collapses"];
	c.l3_collapses = v.value["direct_map_level3_collapses"];
	c.dm_4k_kb = m.value["DirectMap4k"];
	c.dm_2m_kb = m.value["DirectMap2M"];
	c.dm_1g_kb = m.value["DirectMap1G"];
	c.mem_total_kb = m.value["MemTotal"];
	c.mem_free_kb = m.value["MemFree"];
	c.mem_available_kb = m.value["MemAvailable"];
	c.cached_kb = m.value["Cached"];
	return R{c, {}};
}

inline parse_result<vmalloc_packs> read_packs(const std::string &root = proc_root())
{
	auto t = detail::read_proc(root, "vmallocinfo");
	if (!t)
		return parse_result<vmalloc_packs>::failure(t.error);
	return parse_vmallocinfo(t.value, root + "/vmallocinfo");
}

/* The machine's state at the start of a run, beyond the counters. */
struct machine_state {
	kernel_counters counters;
	std::vector<zone_free> buddy;
	std::vector<zone_pages> zones;
	vmalloc_packs packs;
	std::string kernel;  /* uname -r */
	std::string cmdline; /* /proc/cmdline, first line */
};

/* Reads everything; the error of the first reader that fails. */
inline parse_result<machine_state> read_state(const std::string &root = proc_root())
{
	using R = parse_result<machine_state>;
	machine_state s;
	auto c = read_counters(root);
	if (!c)
		return R::failure(c.error);
	s.counters = c.value;
	auto bt = detail::read_proc(root, "buddyinfo");
	if (!bt)
		return R::failure(bt.error);
	auto b = parse_buddyinfo(bt.value, root + "/buddyinfo");
	if (!b)
		return R::failure(b.error);
	s.buddy = std::move(b.value);
	auto zt = detail::read_proc(root, "zoneinfo");
	if (!zt)
		return R::failure(zt.error);
	auto z = parse_zoneinfo(zt.value, root + "/zoneinfo");
	if (!z)
		return R::failure(z.error);
	s.zones = std::move(z.value);
	auto p = read_packs(root);
	if (!p)
		return R::failure(p.error);
	s.packs = std::move(p.value);
	if (auto k = detail::read_proc(root, "sys/kernel/osrelease"))
		s.kernel = std::string(k.value.substr(0, k.value.find('\n')));
	if (auto cl = detail::read_proc(root, "cmdline"))
		s.cmdline = std::string(cl.value.substr(0, cl.value.find('\n')));
	return R{std::move(s), {}};
}

}  // namespace ua::live
