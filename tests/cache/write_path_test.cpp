// The write paths of text and ro caches (cache_config::write, chunk_source.h):
// through the backend, or through a second read-write alias that is never
// executable. Both keep every address W^X and trap-fill freed text before reuse.
#include <doctest/doctest.h>

#include <signal.h>

#include <cstring>
#include <vector>

#include <unmapped_alloc/mapping/smaps.h>

#include "cache_fixture.h"
#include "child.h"

using namespace ua;

#define BACKENDS ua_test::sim_machine, ua_test::real_machine

namespace {

cache_config alias_text_config()
{
	cache_config cfg = text_cache_config("alias");
	cfg.write = write_path::writable_alias;
	cfg.nr_shards = 1;
	return cfg;
}

}  // namespace

TEST_CASE_TEMPLATE("write_path: the write alias is read-write and never executable, and goes with its run", M, BACKENDS)
{
	auto m = M::make();
	auto boot = m->backend.stats();
	cache_config cfg = alias_text_config();
	chunk_source<typename M::backend> src(*m, cfg);
	auto r = src.acquire(1);
	REQUIRE(r.ok());
	const chunk_run &run = r.value;
	REQUIRE(run.write_alias != 0);
	CHECK(run.write_alias != run.alias);
	CHECK(m->backend.alias_prot(run.alias) == prot::rx);
	CHECK(m->backend.alias_prot(run.write_alias) == prot::rw);
	CHECK(m->backend.alias_prot(run.write_alias + chunk_size - 1) == prot::rw);
	/* Both aliases show the same frames. */
	CHECK(m->backend.alias_pfn(run.write_alias + 5 * page_size) == m->backend.alias_pfn(run.alias + 5 * page_size));
	CHECK(m->backend.stats().aliases == boot.aliases + 2);
	if constexpr (M::backend::dereferenceable)
		CHECK(smaps::find_wx_mapping() == "");
	std::uintptr_t wa = run.write_alias, ua_ = run.alias;
	REQUIRE(src.release(r.value) == error::ok);
	CHECK(!m->backend.alias_prot(wa).has_value());
	CHECK(!m->backend.alias_prot(ua_).has_value());
	CHECK(m->backend.stats().aliases == boot.aliases);

	/* The default write path maps no second alias. */
	cache_config dflt = text_cache_config();
	chunk_source<typename M::backend> src2(*m, dflt);
	auto r2 = src2.acquire(1);
	REQUIRE(r2.ok());
	CHECK(r2.value.write_alias == 0);
	CHECK(m->backend.stats().aliases == boot.aliases + 1);
	REQUIRE(src2.release(r2.value) == error::ok);
}

TEST_CASE_TEMPLATE("write_path: writes and trap fills go through the write alias, and freed text is filled before reuse", M, BACKENDS)
{
	auto m = M::make();
	unmapped_cache<typename M::backend> c(*m, alias_text_config());
	auto a = c.alloc(300, 64);
	REQUIRE(a.ok());
	std::vector<unsigned char> code(300);
	for (std::size_t i = 0; i < code.size(); i++)
		code[i] = static_cast<unsigned char>(0x90 ^ i);
	auto w0 = m->backend.stats().bytes_written;
	REQUIRE(c.write(a.value, code.data(), code.size()) == error::ok);
	auto w1 = m->backend.stats().bytes_written;
	REQUIRE(c.free(a.value) == error::ok);
	auto w2 = m->backend.stats().bytes_written;
	if constexpr (M::backend::dereferenceable) {
		/* Stores through the write alias: no syscall, the backend wrote nothing. */
		CHECK(w1 == w0);
		CHECK(w2 == w1);
	} else {
		/* The simulation models the stores with its write path. */
		CHECK(w1 == w0 + 300);
		CHECK(w2 == w1 + 320); /* the granule-rounded range */
	}
	/* The same range again: trap bytes only, nothing of the old program. */
	auto b = c.alloc(300, 64);
	REQUIRE(b.ok());
	CHECK(b.value == a.value); /* best fit in the one chunk: the freed range is reused */
	std::vector<unsigned char> seen(320);
	if (ua_test::read_alias<typename M::backend>(b.value, seen.data(), seen.size()))
		for (unsigned char x : seen)
			REQUIRE(x == trap_byte);
	/* A write cannot run past its allocation, whatever the path. */
	CHECK(c.write(b.value, code.data(), 321) == error::too_large);
	REQUIRE(c.free(b.value) == error::ok);
}

TEST_CASE("write_path: code written through the write alias runs from the executable alias, which stays unwritable")
{
	auto m = ua_test::real_machine::make();
	unmapped_cache<linux_backend> c(*m, alias_text_config());
	auto r = c.alloc(16, 16);
	REQUIRE(r.ok());
	const unsigned char ret42[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3}; /* mov eax, 42; ret */
	REQUIRE(c.write(r.value, ret42, sizeof ret42) == error::ok);
	CHECK(reinterpret_cast<int (*)()>(r.value)() == 42);
	CHECK(ua_test::child_signal([&] { *static_cast<volatile unsigned char *>(r.value) = 1; }) == SIGSEGV);
	CHECK(smaps::find_wx_mapping() == "");
	REQUIRE(c.free(r.value) == error::ok);
	unsigned char first = 0;
	std::memcpy(&first, r.value, 1);
	CHECK(first == trap_byte);
}

TEST_CASE_TEMPLATE("write_path: a large run has its write alias too", M, BACKENDS)
{
	auto m = M::make();
	unmapped_cache<typename M::backend> c(*m, alias_text_config());
	auto r = c.alloc(chunk_size + 4096);
	REQUIRE(r.ok());
	unsigned char x[64];
	std::memset(x, 0x41, sizeof x);
	REQUIRE(c.write(static_cast<char *>(r.value) + chunk_size, x, sizeof x) == error::ok);
	if constexpr (M::backend::dereferenceable)
		CHECK(static_cast<unsigned char *>(r.value)[chunk_size + 63] == 0x41);
	auto aliases = m->backend.stats().aliases;
	REQUIRE(c.free(r.value) == error::ok);
	CHECK(m->backend.stats().aliases == aliases - 2);
}

TEST_CASE("write_path: a secret cache has no write path to choose")
{
	cache_config cfg = secret_cache_config();
	CHECK(cfg.valid());
	cfg.write = write_path::writable_alias;
	CHECK(!cfg.valid());
	cache_config ro = ro_cache_config();
	ro.write = write_path::writable_alias;
	CHECK(ro.valid());
}
