// SPDX-License-Identifier: MIT
/*
 * bpftool.h - reading `bpftool prog show` plain-text output, and the size a
 * program takes as the kernel allocates it.
 *
 * bpftool (tools/bpf/bpftool/prog.c, print_prog_plain()) prints one record per
 * program:
 *
 *   ID: TYPE  [name NAME]  tag HEX  [gpl] [run_time_ns N run_cnt N] ...
 *   <tab>loaded_at DATE  uid N
 *   <tab>xlated NB  jited NB  memlock NB  [map_ids ...]   (or `not jited`)
 *   <tab>btf_id N / pids ... / pinned ... / metadata ...
 *
 * A record starts at an unindented line `ID: ...`; every indented line (tab or
 * spaces) belongs to the record above it. TYPE is `type N` for a type bpftool
 * does not know; old bpftool prints the tag with colons (`tag 6d:ee:...`).
 * Only the header and the `xlated` line are interpreted; other indented lines
 * and unknown words on the header line are tolerated, so newer bpftool output
 * keeps reading. `memlock` is optional (older bpftool lacks it).
 *
 * A program with `not jited` (or no `jited` field) runs in the interpreter:
 * it holds no executable memory, so it is kept in the listing with jited = 0,
 * counted in not_jited, and left out of the workload built from the listing.
 *
 * Errors, each with file and line: a line before the first record that is not
 * a record header (a shell prompt, a libbpf warning, JSON output), an
 * indented line before any record, a header without `ID:` or `tag`, a
 * record without an `xlated` line or with two, a size that is not `<digits>B`,
 * a duplicate ID, no program at all.
 *
 * Allocated size. bpf_jit_binary_pack_alloc() (kernel/bpf/core.c, 5.18+)
 * allocates round_up(proglen + sizeof(struct bpf_binary_header) + 16,
 * BPF_PROG_CHUNK_SIZE) with BPF_PROG_CHUNK_SIZE = 64, the 16 bytes being room
 * for a random run of illegal instructions before the image. struct
 * bpf_binary_header (include/linux/filter.h) is { u32 size; u8 image[]
 * __aligned(BPF_IMAGE_ALIGNMENT); } with BPF_IMAGE_ALIGNMENT = 8, so its
 * sizeof is 8 (4 bytes of field, 4 of padding before the aligned image).
 * Requests above one pack (2 MiB) get their own page-rounded mapping
 * (bpf_prog_pack_alloc()). Before packs, bpf_jit_binary_alloc() took
 * round_up(proglen + sizeof(header) + 128, PAGE_SIZE): at least one page each.
 */
#pragma once

#include "workload/op.h"
#include "workload/text.h"

#include <unmapped_alloc/config.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ua::workload {

inline constexpr std::size_t bpf_binary_header_size = 8;  /* sizeof(struct bpf_binary_header) */
inline constexpr std::size_t bpf_prog_chunk_size = 64;    /* BPF_PROG_CHUNK_SIZE: one bitmap bit */
inline constexpr std::size_t bpf_prog_pack_size = pmd_size; /* BPF_PROG_PACK_SIZE on x86-64 */

/* Bytes bpf_prog_pack hands out for a JIT image of jited bytes. */
constexpr std::size_t bpf_pack_alloc_size(std::size_t jited) noexcept
{
	std::size_t size = align_up(jited + bpf_binary_header_size + 16, bpf_prog_chunk_size);
	return size > bpf_prog_pack_size ? align_up(size, page_size) : size;
}

/* Bytes the pre-5.18 bpf_jit_binary_alloc() took: whole pages, 128 bytes of slack at least. */
constexpr std::size_t bpf_page_alloc_size(std::size_t jited) noexcept
{
	return align_up(jited + bpf_binary_header_size + 128, page_size);
}

static_assert(bpf_pack_alloc_size(296) == 320 && bpf_pack_alloc_size(297) == 384);
static_assert(bpf_page_alloc_size(1) == page_size && bpf_page_alloc_size(page_size - 136) == page_size);

struct bpf_prog_entry {
	std::uint32_t id = 0;
	std::string type;          /* `cgroup_skb`, or `type 32` when bpftool did not know it */
	std::string name;          /* empty when the program has none */
	std::size_t xlated = 0;    /* bytes of verified BPF instructions */
	std::size_t jited = 0;     /* bytes of JIT image; 0 when `not jited` */
	std::size_t memlock = 0;   /* 0 when not printed */
	std::size_t line = 0;      /* line of the record header */

	bool is_jited() const noexcept { return jited != 0; }
};

struct bpf_listing {
	std::vector<bpf_prog_entry> programs;  /* in listed order (bpftool lists by ascending ID) */
	std::size_t not_jited = 0;             /* programs without a JIT image */
};

namespace detail {

inline bool parse_bytes(std::string_view s, std::size_t &out) noexcept
{
	std::uint64_t v;
	if (s.size() < 2 || s.back() != 'B' || !parse_u64(s.substr(0, s.size() - 1), v))
		return false;
	out = std::size_t(v);
	return true;
}

inline bool is_prog_tag(std::string_view s) noexcept
{
	std::size_t digits = 0;
	for (char c : s) {
		if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))
			digits++;
		else if (c != ':')
			return false;
	}
	return digits == 16;  /* BPF_TAG_SIZE = 8 bytes */
}

/* `ID: TYPE [name NAME] tag HEX ...`; "" or what is wrong. */
inline std::string parse_prog_header(const std::vector<std::string_view> &f, bpf_prog_entry &e)
{
	std::uint64_t id;
	if (f.empty() || f[0].size() < 2 || f[0].back() != ':' || !parse_u64(f[0].substr(0, f[0].size() - 1), id) ||
	    id > UINT32_MAX)
		return "expected a program record `ID: TYPE  name NAME  tag HEX`, got " + quote(f.empty() ? "" : f[0]);
	if (f.size() < 2)
		return "program " + std::to_string(id) + " has no type";
	e.id = std::uint32_t(id);
	std::size_t i = 1;
	std::uint64_t num;
	if (f[1] == "type" && f.size() > 2 && parse_u64(f[2], num)) {
		e.type = "type " + std::string(f[2]);
		i = 3;
	} else {
		e.type = std::string(f[1]);
		i = 2;
	}
	bool tag = false;
	for (; i < f.size(); i++) {
		if (f[i] == "name" && i + 1 < f.size()) {
			e.name = std::string(f[++i]);
		} else if (f[i] == "tag") {
			if (i + 1 >= f.size() || !is_prog_tag(f[i + 1]))
				return "program " + std::to_string(id) + " has a bad tag";
			tag = true;
			i++;
		}
	}
	if (!tag)
		return "program " + std::to_string(id) + " has no `tag`: not a bpftool prog record";
	return {};
}

/* `xlated NB  (jited NB | not jited)  [memlock NB]  ...`. */
inline std::string parse_prog_sizes(const std::vector<std::string_view> &f, bpf_prog_entry &e)
{
	if (f.size() < 2 || !parse_bytes(f[1], e.xlated))
		return "bad `xlated` size " + quote(f.size() < 2 ? "" : f[1]);
	for (std::size_t i = 2; i < f.size(); i++) {
		if (f[i] == "jited") {
			if (i + 1 >= f.size() || !parse_bytes(f[i + 1], e.jited) || e.jited == 0)
				return "bad `jited` size " + quote(i + 1 < f.size() ? f[i + 1] : "");
			i++;
		} else if (f[i] == "not" && i + 1 < f.size() && f[i + 1] == "jited") {
			i++;
		} else if (f[i] == "memlock") {
			if (i + 1 >= f.size() || !parse_bytes(f[i + 1], e.memlock))
				return "bad `memlock` size " + quote(i + 1 < f.size() ? f[i + 1] : "");
			i++;
		}
	}
	return {};
}

}  // namespace detail

/* Parses `bpftool prog show` output held in text; file names it in messages. */
inline parse_result<bpf_listing> parse_bpftool(std::string_view text, std::string_view file)
{
	using R = parse_result<bpf_listing>;
	bpf_listing out;
	detail::line_reader lines(text);
	std::string_view line;
	bool have_sizes = false;
	std::unordered_map<std::uint32_t, std::size_t> seen;

	auto close_record = [&]() -> std::string {
		if (out.programs.empty() || have_sizes)
			return {};
		const bpf_prog_entry &e = out.programs.back();
		return detail::at_line(file, e.line, "program " + std::to_string(e.id) + " has no `xlated` line");
	};

	while (lines.next(line)) {
		auto f = detail::split_fields(line);
		if (f.empty())
			continue;
		if (!detail::is_indented(line)) {
			if (std::string err = close_record(); !err.empty())
				return R::failure(err);
			bpf_prog_entry e;
			if (std::string err = detail::parse_prog_header(f, e); !err.empty())
				return R::failure(detail::at_line(file, lines.number(), err));
			e.line = lines.number();
			auto [it, fresh] = seen.emplace(e.id, e.line);
			if (!fresh)
				return R::failure(detail::at_line(file, e.line, "program " + std::to_string(e.id) +
					" listed twice (first on line " + std::to_string(it->second) + ")"));
			out.programs.push_back(std::move(e));
			have_sizes = false;
			continue;
		}
		if (out.programs.empty())
			return R::failure(detail::at_line(file, lines.number(),
				"indented line before any `ID: TYPE ...` record: " + detail::quote(line)));
		if (f[0] != "xlated")
			continue;  /* loaded_at, btf_id, pids, pinned, metadata: not needed */
		if (have_sizes)
			return R::failure(detail::at_line(file, lines.number(), "second `xlated` line in program " +
				std::to_string(out.programs.back().id)));
		if (std::string err = detail::parse_prog_sizes(f, out.programs.back()); !err.empty())
			return R::failure(detail::at_line(file, lines.number(), err));
		have_sizes = true;
	}
	if (std::string err = close_record(); !err.empty())
		return R::failure(err);
	if (out.programs.empty())
		return R::failure(detail::at_line(file, lines.number() ? lines.number() : 1, "no program listed"));
	for (const auto &p : out.programs)
		out.not_jited += !p.is_jited();
	return R{std::move(out), {}};
}

/* Reads a saved `bpftool prog show` output (run as root: `bpftool prog show > progs.txt`). */
inline parse_result<bpf_listing> read_bpftool(const std::string &path)
{
	auto text = detail::read_text_file(path);
	if (!text)
		return parse_result<bpf_listing>::failure(std::move(text.error));
	return parse_bpftool(text.value, path);
}

/* How a program's JIT image is sized: bpf_prog_pack (5.18+) or one page-rounded mapping each. */
enum class bpf_alloc_model { pack, page };

/*
 * Loads every JIT-ed program of a listing, in ascending ID order (IDs come
 * from idr_alloc_cyclic(), so that is load order), and keeps them live.
 * Programs that are not JIT-ed are skipped (listing.not_jited of them).
 */
inline workload bpf_listing_workload(const bpf_listing &l, bpf_alloc_model model, std::string name)
{
	std::vector<const bpf_prog_entry *> progs;
	for (const auto &p : l.programs)
		if (p.is_jited())
			progs.push_back(&p);
	std::sort(progs.begin(), progs.end(), [](auto *a, auto *b) { return a->id < b->id; });
	workload w{std::move(name), {}};
	w.ops.reserve(progs.size());
	for (const auto *p : progs) {
		bool pack = model == bpf_alloc_model::pack;
		std::size_t size = pack ? bpf_pack_alloc_size(p->jited) : bpf_page_alloc_size(p->jited);
		std::size_t align = pack && size <= bpf_prog_pack_size ? bpf_prog_chunk_size : page_size;
		w.ops.push_back(op::make_alloc(p->id, size, align, p->name.empty() ? p->type : p->name).of(memory_kind::bpf_text));
	}
	return w;
}

}  // namespace ua::workload
