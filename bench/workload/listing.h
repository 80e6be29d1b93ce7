// SPDX-License-Identifier: MIT
/*
 * listing.h - reading module listings: `lsmod` output and /proc/modules.
 *
 * Both list one module per line, newest first: the kernel adds a module at the
 * head of its `modules` list (kernel/module/main.c, add_unformed_module() uses
 * list_add_rcu) and m_show() walks that list in order. Read bottom-up, a
 * listing is therefore the real load order, and that is the order returned.
 *
 * The format is told from the first non-blank line:
 *   lsmod          a header `Module Size Used by` (busybox appends
 *                  `Tainted: X`), then `NAME SIZE REFCOUNT [HOLDERS]`;
 *   /proc/modules  no header; `NAME SIZE REFCOUNT HOLDERS STATE [ADDRESS] [(TAINT)]`
 *                  as printed by m_show(): REFCOUNT is `-` and HOLDERS `-` on
 *                  kernels without CONFIG_MODULE_UNLOAD, HOLDERS ends with a
 *                  comma and may hold `[permanent],` or `[unsafe],`, ADDRESS is
 *                  0x0000000000000000 under kptr_restrict, TAINT looks like (OE).
 * SIZE is the module's size in bytes as the kernel reports it: page multiples
 * on kernels with strict module RWX, any value on old ones (accepted as is).
 *
 * Blank lines, trailing blanks and CRLF line ends are accepted. Anything else
 * is an error naming the file and line: a shell prompt or command echoed above
 * the listing, a missing or non-numeric size, a size of 0, a bad module name,
 * an unknown /proc/modules state, the same module listed twice, or a listing
 * with no module at all. Point read_modules() at /proc/modules, or save
 * `lsmod > my.txt`, to read your own machine.
 */
#pragma once

#include "workload/op.h"
#include "workload/text.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ua::workload {

struct module_entry {
	std::string name;
	std::size_t size = 0;  /* bytes, as listed */
	std::size_t line = 0;  /* where it was listed, for messages */
};

enum class listing_format { lsmod, proc_modules };

struct module_listing {
	listing_format format = listing_format::lsmod;
	std::vector<module_entry> modules;  /* load order: oldest (last listed) first */
};

namespace detail {

/* MODULE_NAME_LEN is 64 including the NUL on 64-bit (64 - sizeof(unsigned long) on newer kernels). */
inline bool is_module_name(std::string_view s) noexcept
{
	if (s.empty() || s.size() > 63)
		return false;
	return std::all_of(s.begin(), s.end(), [](char c) {
		return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
	});
}

/* Holders: module names separated (lsmod) or terminated (/proc/modules) by commas, or `-`. */
inline bool is_holder_list(std::string_view s) noexcept
{
	if (s == "-")
		return true;
	if (s.empty())
		return false;
	std::size_t i = 0;
	while (i < s.size()) {
		std::size_t end = s.find(',', i);
		if (end == std::string_view::npos)
			end = s.size();
		std::string_view item = s.substr(i, end - i);
		if (!is_module_name(item) && item != "[permanent]" && item != "[unsafe]")
			return false;
		i = end + 1;
	}
	return true;
}

inline bool is_refcount(std::string_view s) noexcept
{
	std::uint64_t v;
	return s == "-" || parse_u64(s, v);
}

inline bool is_taint(std::string_view s) noexcept { return s.size() >= 3 && s.front() == '(' && s.back() == ')'; }

inline bool is_address(std::string_view s) noexcept
{
	if (s.size() < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
		return false;
	return std::all_of(s.begin() + 2, s.end(), [](char c) {
		return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
	});
}

inline bool is_lsmod_header(const std::vector<std::string_view> &f) noexcept
{
	return f.size() >= 4 && f[0] == "Module" && f[1] == "Size" && f[2] == "Used" && f[3] == "by" &&
	       (f.size() == 4 || (f.size() == 6 && f[4] == "Tainted:"));
}

/* Name and size, common to both formats; "" or what is wrong. */
inline std::string parse_name_size(const std::vector<std::string_view> &f, module_entry &e)
{
	if (!is_module_name(f[0]))
		return "bad module name " + quote(f[0]);
	std::uint64_t size;
	if (!parse_u64(f[1], size))
		return "size " + quote(f[1]) + " of module " + quote(f[0]) + " is not a number";
	if (size == 0)
		return "module " + quote(f[0]) + " has size 0";
	e.name = std::string(f[0]);
	e.size = std::size_t(size);
	return {};
}

/* `NAME SIZE REFCOUNT [HOLDERS] [extra]`; extras only as [flag] or (taint). */
inline std::string parse_lsmod_line(const std::vector<std::string_view> &f, module_entry &e)
{
	if (f.size() < 3)
		return "expected `NAME SIZE USED [BY]`, got " + std::to_string(f.size()) + " field(s)";
	if (std::string err = parse_name_size(f, e); !err.empty())
		return err;
	if (!is_refcount(f[2]))
		return "use count " + quote(f[2]) + " of module " + quote(f[0]) + " is not a number";
	if (f.size() >= 4 && !is_holder_list(f[3]) && !is_taint(f[3]))
		return "bad holder list " + quote(f[3]);
	for (std::size_t i = 4; i < f.size(); i++)
		if (!is_taint(f[i]) && !(f[i].front() == '[' && f[i].back() == ']'))
			return "unexpected extra field " + quote(f[i]);
	return {};
}

/* `NAME SIZE REFCOUNT HOLDERS STATE [ADDRESS] [(TAINT)]`, as m_show() prints it. */
inline std::string parse_proc_line(const std::vector<std::string_view> &f, module_entry &e)
{
	if (f.size() < 5)
		return "expected `NAME SIZE REFCOUNT HOLDERS STATE [ADDRESS]`, got " + std::to_string(f.size()) +
		       " field(s)";
	if (std::string err = parse_name_size(f, e); !err.empty())
		return err;
	if (!is_refcount(f[2]))
		return "reference count " + quote(f[2]) + " of module " + quote(f[0]) + " is not a number";
	if (!is_holder_list(f[3]))
		return "bad holder list " + quote(f[3]);
	if (f[4] != "Live" && f[4] != "Loading" && f[4] != "Unloading")
		return "state " + quote(f[4]) + " is not Live, Loading or Unloading";
	std::size_t i = 5;
	if (i < f.size() && is_address(f[i]))
		i++;
	if (i < f.size() && is_taint(f[i]))
		i++;
	if (i < f.size())
		return "unexpected extra field " + quote(f[i]);
	return {};
}

}  // namespace detail

/* Parses a listing held in text; file names it in messages. */
inline parse_result<module_listing> parse_modules(std::string_view text, std::string_view file)
{
	using R = parse_result<module_listing>;
	module_listing out;
	detail::line_reader lines(text);
	std::string_view line;
	bool format_known = false;
	std::unordered_map<std::string, std::size_t> seen;

	while (lines.next(line)) {
		auto f = detail::split_fields(line);
		if (f.empty())
			continue;
		if (!format_known) {
			format_known = true;
			if (detail::is_lsmod_header(f)) {
				out.format = listing_format::lsmod;
				continue;
			}
			out.format = listing_format::proc_modules;
			module_entry probe;
			if (!detail::parse_proc_line(f, probe).empty())
				return R::failure(detail::at_line(file, lines.number(),
					"neither an lsmod header (`Module Size Used by`) nor a /proc/modules line: " +
					detail::quote(line)));
		}
		module_entry e;
		std::string err = out.format == listing_format::lsmod ? detail::parse_lsmod_line(f, e)
								      : detail::parse_proc_line(f, e);
		if (!err.empty())
			return R::failure(detail::at_line(file, lines.number(), err));
		e.line = lines.number();
		auto [it, fresh] = seen.emplace(e.name, e.line);
		if (!fresh)
			return R::failure(detail::at_line(file, e.line, "module " + detail::quote(e.name) +
				" listed twice (first on line " + std::to_string(it->second) + ")"));
		out.modules.push_back(std::move(e));
	}
	if (out.modules.empty())
		return R::failure(detail::at_line(file, lines.number() ? lines.number() : 1, "no module listed"));
	std::reverse(out.modules.begin(), out.modules.end());
	return R{std::move(out), {}};
}

/* Reads a listing file: a saved `lsmod` output or /proc/modules itself. */
inline parse_result<module_listing> read_modules(const std::string &path)
{
	auto text = detail::read_text_file(path);
	if (!text)
		return parse_result<module_listing>::failure(std::move(text.error));
	return parse_modules(text.value, path);
}

}  // namespace ua::workload
