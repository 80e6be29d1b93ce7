// SPDX-License-Identifier: MIT
/*
 * text.h - the line and field handling shared by every reader.
 *
 * All readers take the whole text plus the name to report it under, so the
 * same code reads a file, a pipe captured into a string, or a test literal.
 * Lines are split on '\n'; a trailing '\r' (CRLF files) and trailing blanks
 * are dropped before anything looks at the line, so neither can change a
 * result. Numbers are plain unsigned decimal, parsed with std::from_chars
 * (no locale, no sign, no exceptions) and checked for overflow.
 */
#pragma once

#include "workload/op.h"

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace ua::workload::detail {

/* "file:line: message", the form compilers use, so editors can jump to it. */
inline std::string at_line(std::string_view file, std::size_t line, std::string_view msg)
{
	std::string s(file);
	s += ':';
	s += std::to_string(line);
	s += ": ";
	s += msg;
	return s;
}

inline bool is_blank(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* Walks a text line by line, numbering from 1, with '\r' and trailing blanks removed. */
class line_reader {
public:
	explicit line_reader(std::string_view text) noexcept : text_(text) {}

	bool next(std::string_view &line) noexcept
	{
		if (pos_ >= text_.size())
			return false;
		std::size_t end = text_.find('\n', pos_);
		if (end == std::string_view::npos)
			end = text_.size();
		line = text_.substr(pos_, end - pos_);
		pos_ = end + 1;
		number_++;
		while (!line.empty() && is_blank(line.back()))
			line.remove_suffix(1);
		return true;
	}
	std::size_t number() const noexcept { return number_; }

private:
	std::string_view text_;
	std::size_t pos_ = 0;
	std::size_t number_ = 0;
};

inline bool is_indented(std::string_view line) noexcept { return !line.empty() && (line[0] == ' ' || line[0] == '\t'); }

/* Fields separated by runs of blanks. */
inline std::vector<std::string_view> split_fields(std::string_view line)
{
	std::vector<std::string_view> out;
	std::size_t i = 0;
	while (i < line.size()) {
		while (i < line.size() && is_blank(line[i]))
			i++;
		std::size_t start = i;
		while (i < line.size() && !is_blank(line[i]))
			i++;
		if (i > start)
			out.push_back(line.substr(start, i - start));
	}
	return out;
}

/* Whole-field unsigned decimal; false on anything else (sign, hex, junk, overflow). */
inline bool parse_u64(std::string_view s, std::uint64_t &out) noexcept
{
	if (s.empty() || s[0] < '0' || s[0] > '9')
		return false;
	auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, 10);
	return ec == std::errc{} && p == s.data() + s.size();
}

/* A quoted field for messages: `abc`. Long fields are cut so one bad line cannot flood a log. */
inline std::string quote(std::string_view s)
{
	constexpr std::size_t max = 60;
	std::string q = "`";
	q += s.substr(0, max);
	if (s.size() > max)
		q += "...";
	q += '`';
	return q;
}

/* Whole file as text; an error names the file and says why it could not be read. */
inline parse_result<std::string> read_text_file(const std::string &path)
{
	std::ifstream in(path, std::ios::binary);
	if (!in)
		return parse_result<std::string>::failure(path + ": cannot open: " + std::strerror(errno));
	std::ostringstream ss;
	ss << in.rdbuf();
	if (in.bad())
		return parse_result<std::string>::failure(path + ": read error");
	return parse_result<std::string>{ss.str(), {}};
}

}  // namespace ua::workload::detail
