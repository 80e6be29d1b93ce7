// SPDX-License-Identifier: MIT
/*
 * trace.h - the trace format: a workload as text, one operation per line.
 *
 *   # comment (anywhere on a line: the rest of the line is ignored)
 *   alloc ID SIZE [ALIGN]
 *   free ID
 *
 * ID, SIZE and ALIGN are unsigned decimal; ALIGN defaults to 1 and must be a
 * power of two; SIZE must not be 0. Fields are separated by blanks; blank
 * lines, trailing blanks and CRLF line ends are accepted. A comment
 * `# workload: NAME` before the first operation names the workload (else it
 * is named after the file). The reader replays the operations as it goes, so
 * a free of an ID that is not live, or an alloc of an ID that is, is reported
 * at its line, like a syntax error (unknown verb, missing or extra field,
 * non-numeric field, zero size, bad alignment).
 *
 * write_trace() writes the same format back; an op's tag becomes a trailing
 * comment (`alloc 7 4096 4096  # ext4.text`), which the reader ignores: tags
 * are labels, not part of the sequence, so a round trip keeps every op equal
 * (op::operator==) and drops only the tags.
 */
#pragma once

#include "workload/op.h"
#include "workload/text.h"

#include <fstream>
#include <string>
#include <string_view>
#include <unordered_set>

namespace ua::workload {

namespace detail {
inline constexpr std::string_view trace_name_key = "workload:";

/* The name from a `# workload: NAME` comment, if the comment is one. */
inline bool trace_name_comment(std::string_view comment, std::string &name)
{
	auto f = split_fields(comment.substr(1));
	if (f.size() < 2 || f[0] != trace_name_key)
		return false;
	name = std::string(comment.substr(std::size_t(f[1].data() - comment.data())));
	return true;
}
}  // namespace detail

/* Parses a trace held in text; file names it in messages (and the workload, unless named inside). */
inline parse_result<workload> parse_trace(std::string_view text, std::string_view file)
{
	using R = parse_result<workload>;
	workload w{std::string(file), {}};
	std::unordered_set<std::uint64_t> live;
	detail::line_reader lines(text);
	std::string_view line;

	while (lines.next(line)) {
		auto fail = [&](const std::string &msg) { return R::failure(detail::at_line(file, lines.number(), msg)); };
		std::size_t hash = line.find('#');
		if (hash != std::string_view::npos) {
			if (w.ops.empty())
				(void)detail::trace_name_comment(line.substr(hash), w.name);
			line = line.substr(0, hash);
		}
		auto f = detail::split_fields(line);
		if (f.empty())
			continue;
		std::uint64_t id, size, align = 1;
		if (f[0] == "alloc") {
			if (f.size() < 3)
				return fail("`alloc` needs ID and SIZE: `alloc ID SIZE [ALIGN]`");
			if (f.size() > 4)
				return fail("unexpected field " + detail::quote(f[4]) + " after `alloc ID SIZE ALIGN`");
			if (!detail::parse_u64(f[1], id))
				return fail("ID " + detail::quote(f[1]) + " is not a number");
			if (!detail::parse_u64(f[2], size))
				return fail("SIZE " + detail::quote(f[2]) + " is not a number");
			if (size == 0)
				return fail("SIZE is 0");
			if (f.size() == 4) {
				if (!detail::parse_u64(f[3], align))
					return fail("ALIGN " + detail::quote(f[3]) + " is not a number");
				if (align == 0 || (align & (align - 1)) != 0)
					return fail("ALIGN " + std::to_string(align) + " is not a power of two");
			}
			if (!live.insert(id).second)
				return fail("alloc of id " + std::to_string(id) + ", which is already live");
			w.ops.push_back(op::make_alloc(id, std::size_t(size), std::size_t(align)));
		} else if (f[0] == "free") {
			if (f.size() < 2)
				return fail("`free` needs an ID: `free ID`");
			if (f.size() > 2)
				return fail("unexpected field " + detail::quote(f[2]) + " after `free ID`");
			if (!detail::parse_u64(f[1], id))
				return fail("ID " + detail::quote(f[1]) + " is not a number");
			if (live.erase(id) == 0)
				return fail("free of id " + std::to_string(id) + ", which is not live");
			w.ops.push_back(op::make_free(id));
		} else {
			return fail("unknown operation " + detail::quote(f[0]) + " (expected `alloc` or `free`)");
		}
	}
	return R{std::move(w), {}};
}

inline parse_result<workload> read_trace(const std::string &path)
{
	auto text = detail::read_text_file(path);
	if (!text)
		return parse_result<workload>::failure(std::move(text.error));
	return parse_trace(text.value, path);
}

/* The trace text of a workload; parse_trace() of it gives back the same ops. */
inline std::string write_trace(const workload &w)
{
	auto one_line = [](std::string s) {
		for (char &c : s)
			if (c == '\n' || c == '\r')
				c = ' ';
		return s;
	};
	std::string out;
	out.reserve(w.ops.size() * 20 + 64);
	if (!w.name.empty())
		out += "# " + std::string(detail::trace_name_key) + " " + one_line(w.name) + "\n";
	for (const op &o : w.ops) {
		if (o.k == op::alloc) {
			out += "alloc " + std::to_string(o.id) + " " + std::to_string(o.size);
			if (o.align != 1)
				out += " " + std::to_string(o.align);
		} else {
			out += "free " + std::to_string(o.id);
		}
		if (!o.tag.empty())
			out += "  # " + one_line(o.tag);
		out += '\n';
	}
	return out;
}

/* Writes write_trace(w) to path; "" or why it failed. */
inline std::string write_trace_file(const workload &w, const std::string &path)
{
	std::ofstream out(path, std::ios::binary | std::ios::trunc);
	if (!out)
		return path + ": cannot create";
	out << write_trace(w);
	out.close();
	return out ? std::string{} : path + ": write error";
}

}  // namespace ua::workload
