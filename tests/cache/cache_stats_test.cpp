// The /proc-style stats text and the global shrinker registry.
#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <vector>

#include "cache_fixture.h"

using namespace ua;

namespace {

std::vector<std::string> fields(const std::string &line)
{
	std::istringstream in(line);
	std::vector<std::string> out;
	for (std::string f; in >> f;)
		out.push_back(f);
	return out;
}

}  // namespace

TEST_CASE("cache stats print one /proc/slabinfo-style line per cache")
{
	auto m = ua_test::sim_machine::make();
	unmapped_cache<sim_direct_map> text(*m, text_cache_config("text"));
	unmapped_cache<sim_direct_map> secrets(*m, secret_cache_config("keys"));
	auto a = text.alloc(100);
	auto b = text.alloc(3 * chunk_size);
	auto c = secrets.alloc(32);
	REQUIRE((a.ok() && b.ok() && c.ok()));
	std::istringstream in(cache_stats_text(text, secrets));
	std::string version, header, l1, l2, extra;
	REQUIRE(std::getline(in, version));
	REQUIRE(std::getline(in, header));
	REQUIRE(std::getline(in, l1));
	REQUIRE(std::getline(in, l2));
	CHECK(!std::getline(in, extra));
	CHECK(version.rfind("unmapped_alloc - version:", 0) == 0);
	auto h = fields(header), t = fields(l1), k = fields(l2);
	REQUIRE(h.size() == 13); /* "#" and 12 column names */
	CHECK(h[0] == "#");
	REQUIRE(t.size() == 12);
	REQUIRE(k.size() == 12);
	auto col = [&](const std::vector<std::string> &row, const char *name) {
		for (std::size_t i = 1; i < h.size(); i++)
			if (h[i] == name)
				return row[i - 1];
		FAIL("no column " << name);
		return std::string();
	};
	CHECK(t[0] == "text");
	CHECK(k[0] == "keys");
	CHECK(col(t, "live_objs") == "2");
	CHECK(col(t, "live_bytes") == std::to_string(128 + 3 * chunk_size)); /* a large run counts its whole chunks */
	CHECK(col(t, "large") == "1");
	CHECK(col(t, "chunks") == std::to_string(text.stats().chunks));
	CHECK(col(t, "dm_changes") == std::to_string(text.stats().source.dm_changes));
	CHECK(col(k, "live_objs") == "1");
	CHECK(col(k, "tlb_flushes") == "1");
	REQUIRE(text.free(a.value) == error::ok);
	REQUIRE(text.free(b.value) == error::ok);
	REQUIRE(secrets.free(c.value) == error::ok);
}

TEST_CASE("the global shrinker counts and gives back every cache's spare chunks")
{
	auto m = ua_test::sim_machine::make();
	auto free0 = m->nr_free_pages();
	unmapped_cache<sim_direct_map> text(*m, text_cache_config("text"));
	unmapped_cache<sim_direct_map> secrets(*m, secret_cache_config("keys"));
	auto a = text.alloc(64), b = secrets.alloc(64);
	REQUIRE((a.ok() && b.ok()));
	REQUIRE(text.free(a.value) == error::ok);
	REQUIRE(secrets.free(b.value) == error::ok);
	auto &reg = shrinker_registry::global();
	CHECK(reg.count() >= 2);
	CHECK(reg.shrink(1) == 1); /* nr_to_scan is honoured */
	CHECK(reg.shrink_all() >= 1);
	CHECK(reg.count() == 0);
	CHECK(text.stats().chunks == 0);
	CHECK(secrets.stats().chunks == 0);
	CHECK(m->nr_free_pages() == free0);
}
