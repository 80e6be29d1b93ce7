// SPDX-License-Identifier: MIT
/*
 * trace.h - the trace format: a workload as text, one operation per line.
 *
 *   # comment (anywhere on a line: the rest of the line is ignored)
 *   alloc ID SIZE [ALIGN] [kind=KIND] [folio=N] [footprint=N] [t=SECONDS]
 *   free ID [t=SECONDS]
 *
 * ID, SIZE and ALIGN are unsigned decimal; ALIGN defaults to 1 and must be a
 * power of two; SIZE must not be 0. The optional fields of op.h follow as
 * KEY=VALUE, in any order, each at most once: kind is a memory kind name
 * (bpf_text, module_text, ro, data, secret, guest), folio and footprint are
 * bytes, t is seconds since the workload began as a decimal with at most 9
 * fractional digits (t=3600 or t=0.000250). Omitted, each is unset (0).
 * Fields are separated by blanks; blank lines, trailing blanks and CRLF line
 * ends are accepted. A comment `# workload: NAME` before the first operation
 * names the workload (else it is named after the file). The reader checks
 * each op with op_checker as it goes, so a free of an ID that is not live,
 * an alloc of an ID that is, or a time stamp before the previous one is
 * reported at its line, like a syntax error (unknown verb or field, missing
 * or repeated field, non-numeric field, zero size, bad alignment or folio,
 * an alloc-only field on a free).
 *
 * write_trace() writes the same format back, setting only the fields that
 * are set; an op's tag becomes a trailing comment (`alloc 7 4096 4096  #
 * ext4.text`), which the reader ignores: tags are labels, not part of the
 * sequence, so a round trip keeps every op equal (op::operator==) and drops
 * only the tags.
 */
#pragma once

#include "workload/op.h"
#include "workload/text.h"

#include <fstream>
#include <string>
#include <string_view>

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
/* Seconds with at most 9 fractional digits ("12", "0.5", "3600.000250") as nanoseconds. */
inline bool parse_seconds_ns(std::string_view s, std::uint64_t &ns) noexcept
{
	const std::size_t dot = s.find('.');
	std::uint64_t whole = 0, frac = 0;
	if (!parse_u64(s.substr(0, dot), whole))
		return false;
	std::size_t digits = 0;
	if (dot != std::string_view::npos) {
		std::string_view f = s.substr(dot + 1);
		if (f.empty() || f.size() > 9 || !parse_u64(f, frac))
			return false;
		digits = f.size();
	}
	for (std::size_t i = digits; i < 9; i++)
		frac *= 10;
	if (whole > (UINT64_MAX - frac) / ns_per_s)
		return false;
	ns = whole * ns_per_s + frac;
	return true;
}

/* The inverse: "12", "0.5", "3600.00025" (trailing zeros dropped). */
inline std::string format_seconds(std::uint64_t ns)
{
	std::string s = std::to_string(ns / ns_per_s);
	std::uint64_t frac = ns % ns_per_s;
	if (frac) {
		std::string f = std::to_string(frac);
		f.insert(0, 9 - f.size(), '0');
		while (f.back() == '0')
			f.pop_back();
		s += '.';
		s += f;
	}
	return s;
}

/*
 * The KEY=VALUE fields after an op's positional ones into o; "" or what is
 * wrong. alloc_only_ok: whether kind, folio and footprint may appear.
 */
inline std::string parse_op_fields(const std::vector<std::string_view> &f, std::size_t from, bool is_alloc, op &o)
{
	bool seen[4] = {};
	static constexpr std::string_view keys[4] = {"kind", "folio", "footprint", "t"};
	for (std::size_t i = from; i < f.size(); i++) {
		const std::size_t eq = f[i].find('=');
		if (eq == std::string_view::npos)
			return "unexpected field " + quote(f[i]) + (is_alloc ? " after `alloc ID SIZE ALIGN`" : " after `free ID`");
		const std::string_view key = f[i].substr(0, eq), value = f[i].substr(eq + 1);
		std::size_t k = 0;
		while (k < 4 && keys[k] != key)
			k++;
		if (k == 4)
			return "unknown field " + quote(f[i]) + " (expected kind=, folio=, footprint= or t=)";
		if (seen[k])
			return "field `" + std::string(key) + "=` given twice";
		seen[k] = true;
		if (!is_alloc && k != 3)
			return "field `" + std::string(key) + "=` belongs to an alloc, not a free";
		std::uint64_t v = 0;
		switch (k) {
		case 0:
			if (!parse_memory_kind(value, o.mem) || o.mem == memory_kind::unspecified)
				return "unknown memory kind " + quote(value) +
				       " (expected bpf_text, module_text, ro, data, secret or guest)";
			break;
		case 1:
			if (!parse_u64(value, v))
				return "folio " + quote(value) + " is not a number";
			if (v == 0 || (v & (v - 1)) != 0)
				return "folio " + std::to_string(v) + " is not a power of two";
			o.folio = std::size_t(v);
			break;
		case 2:
			if (!parse_u64(value, v))
				return "footprint " + quote(value) + " is not a number";
			o.footprint = std::size_t(v);
			break;
		default:
			if (!parse_seconds_ns(value, o.t_ns))
				return "time " + quote(value) + " is not seconds with at most 9 decimals";
			break;
		}
	}
	return {};
}
}  // namespace detail

/* Parses a trace held in text; file names it in messages (and the workload, unless named inside). */
inline parse_result<workload> parse_trace(std::string_view text, std::string_view file)
{
	using R = parse_result<workload>;
	workload w{std::string(file), {}};
	op_checker checker;
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
		op o;
		if (f[0] == "alloc") {
			if (f.size() < 3 || f[1].find('=') != std::string_view::npos || f[2].find('=') != std::string_view::npos)
				return fail("`alloc` needs ID and SIZE: `alloc ID SIZE [ALIGN]`");
			if (!detail::parse_u64(f[1], id))
				return fail("ID " + detail::quote(f[1]) + " is not a number");
			if (!detail::parse_u64(f[2], size))
				return fail("SIZE " + detail::quote(f[2]) + " is not a number");
			if (size == 0)
				return fail("SIZE is 0");
			std::size_t keyed = 3;
			if (f.size() > 3 && f[3].find('=') == std::string_view::npos) {
				if (!detail::parse_u64(f[3], align))
					return fail("ALIGN " + detail::quote(f[3]) + " is not a number");
				if (align == 0 || (align & (align - 1)) != 0)
					return fail("ALIGN " + std::to_string(align) + " is not a power of two");
				keyed = 4;
			}
			o = op::make_alloc(id, std::size_t(size), std::size_t(align));
			if (std::string why = detail::parse_op_fields(f, keyed, true, o); !why.empty())
				return fail(why);
		} else if (f[0] == "free") {
			if (f.size() < 2 || f[1].find('=') != std::string_view::npos)
				return fail("`free` needs an ID: `free ID`");
			if (!detail::parse_u64(f[1], id))
				return fail("ID " + detail::quote(f[1]) + " is not a number");
			o = op::make_free(id);
			if (std::string why = detail::parse_op_fields(f, 2, false, o); !why.empty())
				return fail(why);
		} else {
			return fail("unknown operation " + detail::quote(f[0]) + " (expected `alloc` or `free`)");
		}
		if (std::string why = checker.check(o); !why.empty())
			return fail(why);
		w.ops.push_back(std::move(o));
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
			if (o.mem != memory_kind::unspecified)
				out += " kind=" + std::string(name_of(o.mem));
			if (o.folio)
				out += " folio=" + std::to_string(o.folio);
			if (o.footprint)
				out += " footprint=" + std::to_string(o.footprint);
		} else {
			out += "free " + std::to_string(o.id);
		}
		if (o.t_ns)
			out += " t=" + detail::format_seconds(o.t_ns);
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
