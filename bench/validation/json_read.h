// SPDX-License-Identifier: MIT
/*
 * validation/json_read.h - a small JSON reader for the files ua-live writes.
 *
 * The validation tool reads the live runs back from ua-live's --json output
 * (docs/live.md), so this reads RFC 8259 JSON into a tree: objects, arrays,
 * strings (the escapes \" \\ \/ \b \f \n \r \t and \uXXXX below U+0080;
 * others become '?'), numbers (as double, and as int64 when they are
 * integers), true, false and null. Bad input gives a value with an error
 * message and the offset where reading stopped; nothing is thrown.
 */
#pragma once

#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ua::validation {

struct json_value {
	enum kind_t { null, boolean, number, string, array, object } kind = null;
	bool b = false;
	double num = 0;
	std::int64_t integer = 0;
	bool is_integer = false;
	std::string str;
	std::vector<json_value> items;
	std::map<std::string, json_value, std::less<>> members;

	/* The member k of an object, or nullptr (also when this is no object). */
	const json_value *get(std::string_view k) const
	{
		if (kind != object)
			return nullptr;
		auto it = members.find(k);
		return it == members.end() ? nullptr : &it->second;
	}
	/* Follows a path of member names; nullptr when any is missing. */
	const json_value *at(std::initializer_list<std::string_view> path) const
	{
		const json_value *v = this;
		for (std::string_view k : path)
			if (!(v = v->get(k)))
				return nullptr;
		return v;
	}
};

struct json_parse_result {
	json_value value;
	std::string error; /* empty: parsed */
	std::size_t offset = 0;
	bool ok() const noexcept { return error.empty(); }
};

namespace detail {

class json_reader {
public:
	explicit json_reader(std::string_view s) : s_(s) {}

	json_parse_result run()
	{
		json_parse_result r;
		skip_ws();
		if (!value(r.value, 0))
			return fail(std::move(r));
		skip_ws();
		if (i_ != s_.size()) {
			err_ = "trailing characters after the value";
			return fail(std::move(r));
		}
		return r;
	}

private:
	static constexpr int max_depth = 64;

	json_parse_result fail(json_parse_result r)
	{
		r.value = {};
		r.error = err_;
		r.offset = i_;
		return r;
	}
	void skip_ws()
	{
		while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t'))
			i_++;
	}
	bool literal(std::string_view w)
	{
		if (s_.substr(i_, w.size()) != w)
			return bad("unknown literal");
		i_ += w.size();
		return true;
	}
	bool bad(const char *what)
	{
		err_ = what;
		return false;
	}

	bool value(json_value &v, int depth)
	{
		if (depth > max_depth)
			return bad("nested too deeply");
		if (i_ >= s_.size())
			return bad("unexpected end of input");
		switch (s_[i_]) {
		case '{': return object(v, depth);
		case '[': return array(v, depth);
		case '"': v.kind = json_value::string; return string(v.str);
		case 't': v.kind = json_value::boolean; v.b = true; return literal("true");
		case 'f': v.kind = json_value::boolean; v.b = false; return literal("false");
		case 'n': v.kind = json_value::null; return literal("null");
		default: return number(v);
		}
	}

	bool object(json_value &v, int depth)
	{
		v.kind = json_value::object;
		i_++;
		skip_ws();
		if (i_ < s_.size() && s_[i_] == '}')
			return i_++, true;
		for (;;) {
			skip_ws();
			std::string k;
			if (i_ >= s_.size() || s_[i_] != '"' || !string(k))
				return err_.empty() ? bad("expected a member name") : false;
			skip_ws();
			if (i_ >= s_.size() || s_[i_] != ':')
				return bad("expected ':'");
			i_++;
			skip_ws();
			json_value m;
			if (!value(m, depth + 1))
				return false;
			v.members.insert_or_assign(std::move(k), std::move(m));
			skip_ws();
			if (i_ < s_.size() && s_[i_] == ',') {
				i_++;
				continue;
			}
			if (i_ < s_.size() && s_[i_] == '}')
				return i_++, true;
			return bad("expected ',' or '}'");
		}
	}

	bool array(json_value &v, int depth)
	{
		v.kind = json_value::array;
		i_++;
		skip_ws();
		if (i_ < s_.size() && s_[i_] == ']')
			return i_++, true;
		for (;;) {
			skip_ws();
			json_value e;
			if (!value(e, depth + 1))
				return false;
			v.items.push_back(std::move(e));
			skip_ws();
			if (i_ < s_.size() && s_[i_] == ',') {
				i_++;
				continue;
			}
			if (i_ < s_.size() && s_[i_] == ']')
				return i_++, true;
			return bad("expected ',' or ']'");
		}
	}

	bool string(std::string &out)
	{
		i_++; /* the opening quote */
		while (i_ < s_.size()) {
			const char c = s_[i_++];
			if (c == '"')
				return true;
			if (static_cast<unsigned char>(c) < 0x20)
				return bad("control character in a string");
			if (c != '\\') {
				out += c;
				continue;
			}
			if (i_ >= s_.size())
				break;
			switch (const char e = s_[i_++]) {
			case '"': case '\\': case '/': out += e; break;
			case 'b': out += '\b'; break;
			case 'f': out += '\f'; break;
			case 'n': out += '\n'; break;
			case 'r': out += '\r'; break;
			case 't': out += '\t'; break;
			case 'u': {
				if (i_ + 4 > s_.size())
					return bad("short \\u escape");
				unsigned cp = 0;
				for (int k = 0; k < 4; k++) {
					const char h = s_[i_++];
					cp <<= 4;
					if (h >= '0' && h <= '9') cp |= unsigned(h - '0');
					else if (h >= 'a' && h <= 'f') cp |= unsigned(h - 'a' + 10);
					else if (h >= 'A' && h <= 'F') cp |= unsigned(h - 'A' + 10);
					else return bad("bad \\u escape");
				}
				out += cp < 0x80 ? char(cp) : '?';
				break;
			}
			default: return bad("bad escape in a string");
			}
		}
		return bad("unterminated string");
	}

	bool number(json_value &v)
	{
		const std::size_t start = i_;
		bool integral = true;
		if (i_ < s_.size() && s_[i_] == '-')
			i_++;
		const std::size_t digits = i_;
		while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9')
			i_++;
		if (i_ == digits)
			return bad("expected a value");
		if (i_ < s_.size() && s_[i_] == '.') {
			integral = false;
			i_++;
			const std::size_t frac = i_;
			while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9')
				i_++;
			if (i_ == frac)
				return bad("expected digits after '.'");
		}
		if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
			integral = false;
			i_++;
			if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-'))
				i_++;
			const std::size_t exp = i_;
			while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9')
				i_++;
			if (i_ == exp)
				return bad("expected digits in the exponent");
		}
		const std::string text(s_.substr(start, i_ - start));
		v.kind = json_value::number;
		v.num = std::strtod(text.c_str(), nullptr);
		if (integral && i_ - digits <= 18) {
			v.is_integer = true;
			v.integer = std::strtoll(text.c_str(), nullptr, 10);
		}
		return true;
	}

	std::string_view s_;
	std::size_t i_ = 0;
	std::string err_;
};

}  // namespace detail

inline json_parse_result parse_json(std::string_view text) { return detail::json_reader(text).run(); }

}  // namespace ua::validation
