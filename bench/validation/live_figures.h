// SPDX-License-Identifier: MIT
/*
 * validation/live_figures.h - the live runs the simulation is checked
 * against, read back from what ua-live wrote.
 *
 * Two sources:
 *   ua-live --json   an array of run objects (docs/live.md): "workload",
 *                    "aged", and under "kernel" "ops", "ops_done",
 *                    "stopped_by" (absent when the run was whole),
 *                    "ageing".free_kb_after (aged runs),
 *                    "delta_after" {level2_splits, level3_splits,
 *                    directmap_4k_kb, directmap_2m_kb, directmap_1g_kb} and
 *                    "state_at_start".counters; runs that were skipped
 *                    (kernel.skipped) are left out;
 *   a CSV            the same figures as columns, for runs whose JSON was
 *                    not kept (the transcribed rows of
 *                    bench/validation/data/): lines starting with '#' are
 *                    comments, then
 *                    workload,ageing(fresh|aged),ops_done,ops,level2_splits,
 *                    level3_splits,dm4k_kb,dm2m_kb,dm1g_kb,start_level2,
 *                    start_level3,stopped_by(may be empty).
 * Either gives the rows in file order, which is the order they ran in.
 * Bad input gives an error naming the run or line, and no rows.
 */
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <unmapped_alloc/mapping/text_lines.h>

#include "validation/json_read.h"

namespace ua::validation {

struct live_row {
	std::string workload; /* as ua-live names it: bpf-fill:PACKS:SIZE, secretmem-fill:MIB */
	bool aged = false;
	std::uint64_t ops = 0, ops_done = 0;
	std::string stopped_by;
	std::int64_t level2_splits = 0, level3_splits = 0;
	std::int64_t dm_4k_kb = 0, dm_2m_kb = 0, dm_1g_kb = 0;
	std::int64_t start_level2 = 0, start_level3 = 0;
	std::int64_t age_free_kb = 0; /* aged: MemFree when the page-cache fill stopped (0: not recorded) */
};

struct live_rows {
	std::vector<live_row> rows;
	std::string error; /* empty: read */
	bool ok() const noexcept { return error.empty(); }
};

namespace detail {

inline bool int_of(const json_value *v, std::int64_t &out)
{
	if (!v || v->kind != json_value::number || !v->is_integer)
		return false;
	out = v->integer;
	return true;
}

inline bool int_field(std::string_view s, std::int64_t &out)
{
	if (s.empty())
		return false;
	auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
	return ec == std::errc{} && p == s.data() + s.size();
}

}  // namespace detail

inline live_rows read_live_json(std::string_view text)
{
	live_rows out;
	json_parse_result j = parse_json(text);
	if (!j.ok()) {
		out.error = "JSON: " + j.error + " at offset " + std::to_string(j.offset);
		return out;
	}
	if (j.value.kind != json_value::array) {
		out.error = "JSON: expected an array of runs";
		return out;
	}
	for (std::size_t i = 0; i < j.value.items.size(); i++) {
		const json_value &run = j.value.items[i];
		const json_value *k = run.get("kernel");
		const json_value *w = run.get("workload");
		if (!k || !w || w->kind != json_value::string) {
			out = {{}, "run " + std::to_string(i) + ": no workload or kernel object"};
			return out;
		}
		if (k->get("skipped"))
			continue;
		live_row r;
		r.workload = w->str;
		const json_value *aged = run.get("aged");
		r.aged = aged && aged->kind == json_value::boolean && aged->b;
		std::int64_t ops = 0, done = 0;
		const json_value *d = k->get("delta_after");
		const json_value *c = k->at({"state_at_start", "counters"});
		const bool ok = detail::int_of(k->get("ops"), ops) && detail::int_of(k->get("ops_done"), done) && d && c &&
				detail::int_of(d->get("level2_splits"), r.level2_splits) &&
				detail::int_of(d->get("level3_splits"), r.level3_splits) &&
				detail::int_of(d->get("directmap_4k_kb"), r.dm_4k_kb) &&
				detail::int_of(d->get("directmap_2m_kb"), r.dm_2m_kb) &&
				detail::int_of(d->get("directmap_1g_kb"), r.dm_1g_kb) &&
				detail::int_of(c->get("direct_map_level2_splits"), r.start_level2) &&
				detail::int_of(c->get("direct_map_level3_splits"), r.start_level3) && ops >= 0 && done >= 0 &&
				done <= ops;
		if (!ok) {
			out = {{}, "run " + std::to_string(i) + " (" + r.workload + "): missing or bad kernel figures"};
			return out;
		}
		r.ops = std::uint64_t(ops);
		r.ops_done = std::uint64_t(done);
		if (const json_value *s = k->get("stopped_by"); s && s->kind == json_value::string)
			r.stopped_by = s->str;
		if (!detail::int_of(k->at({"ageing", "free_kb_after"}), r.age_free_kb))
			r.age_free_kb = 0;
		out.rows.push_back(std::move(r));
	}
	return out;
}

inline live_rows read_live_csv(std::string_view text)
{
	live_rows out;
	std::size_t no = 0;
	while (!text.empty()) {
		std::string_view line = next_line(text);
		no++;
		if (!line.empty() && line.back() == '\r')
			line.remove_suffix(1);
		if (line.empty() || line.front() == '#')
			continue;
		std::vector<std::string_view> f;
		for (;;) {
			const std::size_t comma = line.find(',');
			f.push_back(line.substr(0, comma));
			if (comma == std::string_view::npos)
				break;
			line.remove_prefix(comma + 1);
		}
		live_row r;
		std::int64_t v[9];
		bool ok = f.size() == 12 && !f[0].empty() && (f[1] == "fresh" || f[1] == "aged");
		for (std::size_t i = 0; ok && i < 9; i++)
			ok = detail::int_field(f[2 + i], v[i]);
		ok = ok && v[0] >= 0 && v[1] >= v[0];
		if (!ok) {
			out = {{}, "CSV line " + std::to_string(no) + ": expected 12 fields (see live_figures.h)"};
			return out;
		}
		r.workload = std::string(f[0]);
		r.aged = f[1] == "aged";
		r.ops_done = std::uint64_t(v[0]);
		r.ops = std::uint64_t(v[1]);
		r.level2_splits = v[2];
		r.level3_splits = v[3];
		r.dm_4k_kb = v[4];
		r.dm_2m_kb = v[5];
		r.dm_1g_kb = v[6];
		r.start_level2 = v[7];
		r.start_level3 = v[8];
		r.stopped_by = std::string(f[11]);
		out.rows.push_back(std::move(r));
	}
	return out;
}

/*
 * DirectMap4k/2M/1G of /proc/meminfo text (the machine's boot figures);
 * false when any of the three is missing or not a number of kB.
 */
inline bool read_meminfo_directmap(std::string_view text, std::int64_t &dm_4k, std::int64_t &dm_2m, std::int64_t &dm_1g)
{
	bool seen[3] = {false, false, false};
	std::int64_t *out[3] = {&dm_4k, &dm_2m, &dm_1g};
	constexpr std::string_view keys[3] = {"DirectMap4k:", "DirectMap2M:", "DirectMap1G:"};
	while (!text.empty()) {
		std::string_view line = next_line(text);
		for (int k = 0; k < 3; k++) {
			if (line.substr(0, keys[k].size()) != keys[k])
				continue;
			std::string_view v = line.substr(keys[k].size());
			while (!v.empty() && v.front() == ' ')
				v.remove_prefix(1);
			if (v.size() < 3 || v.substr(v.size() - 3) != " kB")
				return false;
			v.remove_suffix(3);
			if (!detail::int_field(v, *out[k]))
				return false;
			seen[k] = true;
		}
	}
	return seen[0] && seen[1] && seen[2];
}

}  // namespace ua::validation
