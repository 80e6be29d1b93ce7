// SPDX-License-Identifier: MIT
/* Tests for bench/validation/json_read.h. */
#include <doctest/doctest.h>

#include "validation/json_read.h"

using namespace ua::validation;

TEST_CASE("objects, arrays, numbers, strings and literals are read into a tree")
{
	auto r = parse_json(R"( {"a": [1, -2, 3.5, 1e3], "s": "x\"y\\z\n\u0041", "t": true, "f": false, "n": null,
	                        "o": {"k": {"deep": 42}}, "e": [], "eo": {}} )");
	REQUIRE(r.ok());
	const json_value &v = r.value;
	REQUIRE(v.kind == json_value::object);
	const json_value *a = v.get("a");
	REQUIRE(a);
	REQUIRE(a->items.size() == 4);
	CHECK(a->items[0].is_integer);
	CHECK(a->items[0].integer == 1);
	CHECK(a->items[1].integer == -2);
	CHECK_FALSE(a->items[2].is_integer);
	CHECK(a->items[2].num == 3.5);
	CHECK(a->items[3].num == 1000);
	CHECK_FALSE(a->items[3].is_integer);
	CHECK(v.get("s")->str == "x\"y\\z\nA");
	CHECK(v.get("t")->b);
	CHECK(v.get("f")->kind == json_value::boolean);
	CHECK_FALSE(v.get("f")->b);
	CHECK(v.get("n")->kind == json_value::null);
	REQUIRE(v.at({"o", "k", "deep"}));
	CHECK(v.at({"o", "k", "deep"})->integer == 42);
	CHECK(v.at({"o", "missing"}) == nullptr);
	CHECK(v.get("e")->items.empty());
	CHECK(v.get("eo")->members.empty());
	CHECK(a->get("x") == nullptr); /* not an object */
}

TEST_CASE("large integers stay exact")
{
	auto r = parse_json("[12894339072, -1048576]");
	REQUIRE(r.ok());
	CHECK(r.value.items[0].integer == 12894339072LL);
	CHECK(r.value.items[1].integer == -1048576);
}

TEST_CASE("bad input is an error with its offset, and no value")
{
	const char *bad[] = {"", "{", "[1,]", "{\"a\" 1}", "{\"a\": 1,}", "[1] 2", "\"abc", "tru", "-", "1.", "1e",
			     "[\"\\q\"]", "{1: 2}", "\"\\u12\""};
	for (const char *b : bad) {
		auto r = parse_json(b);
		CAPTURE(b);
		CHECK_FALSE(r.ok());
		CHECK(r.value.kind == json_value::null);
	}
	auto r = parse_json("[1, 2, x]");
	REQUIRE_FALSE(r.ok());
	CHECK(r.offset == 7);
}

TEST_CASE("nesting deeper than the limit is refused, not a stack overflow")
{
	std::string deep(1000, '[');
	deep += std::string(1000, ']');
	auto r = parse_json(deep);
	CHECK_FALSE(r.ok());
	CHECK(r.error == "nested too deeply");
}
