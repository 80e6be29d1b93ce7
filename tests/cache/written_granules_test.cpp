// Written granules (cache/written_granules.h): a free fills what was written
// since the last fill, and every granule left unmarked holds the fill byte.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "cache_fixture.h"

using namespace ua;

#define BACKENDS ua_test::sim_machine, ua_test::real_machine

TEST_CASE("written_granules: runs of marked granules are filled clipped to the range, and cleared when wholly inside")
{
	written_granules w;
	REQUIRE(w.init(chunk_size, 64));
	CHECK(w.memory_bytes() == chunk_size / 64 / 8);
	w.mark(10, 100);   /* granules 0 and 1 */
	w.mark(64 * 5, 1); /* granule 5 */
	w.mark(64 * 63, 64 * 3); /* granules 63-65, across a word */
	std::vector<std::pair<std::size_t, std::size_t>> fills;
	auto record = [&](std::size_t o, std::size_t l) {
		fills.emplace_back(o, l);
		return true;
	};
	REQUIRE(w.fill_written(32, 64 * 70 - 32, record)); /* from inside granule 0 to the end of granule 69 */
	REQUIRE(fills.size() == 3);
	CHECK(fills[0] == std::pair<std::size_t, std::size_t>(32, 128 - 32));
	CHECK(fills[1] == std::pair<std::size_t, std::size_t>(64 * 5, 64));
	CHECK(fills[2] == std::pair<std::size_t, std::size_t>(64 * 63, 64 * 3));
	CHECK(w.written(0)); /* granule 0 was only partly inside: still marked */
	CHECK(!w.written(64));
	CHECK(!w.written(64 * 5));
	CHECK(!w.written(64 * 64));
	fills.clear();
	REQUIRE(w.fill_written(0, 64 * 100, record));
	REQUIRE(fills.size() == 1);
	CHECK(fills[0] == std::pair<std::size_t, std::size_t>(0, 64));
	CHECK(!w.written(0));
	fills.clear();
	REQUIRE(w.fill_written(0, chunk_size, record));
	CHECK(fills.empty());
	w.destroy();
	CHECK(!w.tracking());
}

TEST_CASE("written_granules: a failed fill stops there and leaves that run and the later ones marked")
{
	written_granules w;
	REQUIRE(w.init(chunk_size, 64));
	w.mark(0, 64);
	w.mark(64 * 4, 64);
	w.mark(64 * 8, 64);
	int calls = 0;
	CHECK(!w.fill_written(0, 64 * 16, [&](std::size_t, std::size_t) { return ++calls < 2; }));
	CHECK(calls == 2);
	CHECK(!w.written(0));
	CHECK(w.written(64 * 4));
	CHECK(w.written(64 * 8));
	w.destroy();
}

TEST_CASE_TEMPLATE("written_granules: a freed program costs a fill of what it wrote, on each write path", M, BACKENDS)
{
	for (write_path path : {write_path::backend, write_path::writable_alias}) {
		CAPTURE(int(path));
		auto m = M::make();
		cache_config cfg = text_cache_config();
		cfg.write = path;
		cfg.nr_shards = 1;
		unmapped_cache<typename M::backend> c(*m, cfg);
		/* Through the backend on both, except a write alias on real memory, which stores: count that too. */
		bool stores = path == write_path::writable_alias && M::backend::dereferenceable;
		auto keep = c.alloc(64); /* keeps the chunk in its arena */
		REQUIRE(keep.ok());
		auto a = c.alloc(4096, 64);
		REQUIRE(a.ok());
		auto w0 = m->backend.stats().bytes_written;
		REQUIRE(c.free(a.value) == error::ok);
		CHECK(m->backend.stats().bytes_written == w0); /* never written: still trap bytes, nothing to fill */
		auto b = c.alloc(4096, 64);
		REQUIRE(b.ok());
		unsigned char code[100];
		std::memset(code, 0x90, sizeof code);
		REQUIRE(c.write(static_cast<char *>(b.value) + 1000, code, sizeof code) == error::ok);
		auto w1 = m->backend.stats().bytes_written;
		REQUIRE(c.free(b.value) == error::ok);
		/* bytes 1000-1099 lie in granules 15-17: 192 bytes filled */
		CHECK(m->backend.stats().bytes_written - w1 == (stores ? 0 : 192));
		auto d = c.alloc(4096, 64);
		REQUIRE(d.ok());
		CHECK(d.value == b.value);
		std::vector<unsigned char> seen(4096);
		if (ua_test::read_alias<typename M::backend>(d.value, seen.data(), seen.size()))
			CHECK(std::count(seen.begin(), seen.end(), trap_byte) == 4096);
		/* ua_zero writes zeroes: the whole range is marked, and its free fills all of it. */
		REQUIRE(c.free(d.value) == error::ok);
		auto z = c.alloc(256, 64, ua_zero);
		REQUIRE(z.ok());
		unsigned char zero[256];
		if (ua_test::read_alias<typename M::backend>(z.value, zero, sizeof zero))
			CHECK(std::count(zero, zero + 256, 0) == 256);
		auto w2 = m->backend.stats().bytes_written;
		REQUIRE(c.free(z.value) == error::ok);
		CHECK(m->backend.stats().bytes_written - w2 == (stores ? 0 : 256));
		if (ua_test::read_alias<typename M::backend>(z.value, zero, sizeof zero))
			CHECK(std::count(zero, zero + 256, trap_byte) == 256);
		REQUIRE(c.free(keep.value) == error::ok);
	}
}

TEST_CASE_TEMPLATE("written_granules: secrets are zeroed whole, whatever was written", M, BACKENDS)
{
	auto m = M::make();
	unmapped_cache<typename M::backend> c(*m, secret_cache_config());
	auto keep = c.alloc(64);
	auto r = c.alloc(512, 16);
	REQUIRE((keep.ok() && r.ok()));
	if constexpr (M::backend::dereferenceable)
		std::memset(r.value, 0x5a, 512);
	auto w0 = m->backend.stats().bytes_written;
	REQUIRE(c.free(r.value) == error::ok);
	if constexpr (M::backend::dereferenceable) {
		unsigned char after[512];
		std::memcpy(after, r.value, sizeof after);
		CHECK(std::count(after, after + 512, 0) == 512);
	} else {
		CHECK(m->backend.stats().bytes_written - w0 == 512);
	}
}
