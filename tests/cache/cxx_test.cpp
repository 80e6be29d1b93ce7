// The C++ layer: the owning handle and the secret allocator for standard containers.
#include <doctest/doctest.h>

#include <cstddef>
#include <string>
#include <vector>

#include "cache_fixture.h"

using namespace ua;

#define BACKENDS ua_test::sim_machine, ua_test::real_machine

TEST_CASE_TEMPLATE("unmapped_ptr frees on scope exit and moves ownership", M, BACKENDS)
{
	using B = typename M::backend;
	auto m = M::make();
	unmapped_cache<B> c(*m, text_cache_config());
	void *raw = nullptr;
	{
		auto h = make_unmapped(c, 300);
		REQUIRE(h.ok());
		unmapped_ptr<B> p = std::move(h.value);
		CHECK(!h.value);
		raw = p.get();
		CHECK(c.stats().live_count == 1);
		const unsigned char nop = 0x90;
		CHECK(p.write(0, &nop, 1) == error::ok);
		CHECK(p.write(300, &nop, 1) == error::too_large);
		unmapped_ptr<B> q;
		q = std::move(p);
		CHECK(q.get() == raw);
	}
	CHECK(c.stats().live_count == 0);
	auto bad = make_unmapped(c, 0);
	CHECK(bad.err == error::zero_size);
	CHECK(!bad.value);
	{
		auto h = make_unmapped(c, 64);
		REQUIRE(h.ok());
		h.value.defer_free();
	}
	rcu::barrier();
	CHECK(c.stats().live_count == 0);
}

TEST_CASE("secret_allocator keeps vector and string contents in the secret cache")
{
	/* Containers write their storage: only a backend with real aliases can hold them. */
	using M = ua_test::real_machine;
	using B = typename M::backend;
	auto m = M::make();
	unmapped_cache<B> secrets(*m, secret_cache_config());
	secret_allocator<std::byte, B> alloc(secrets);
	{
		std::vector<std::byte, secret_allocator<std::byte, B>> key(alloc);
		key.resize(32);
		CHECK(secrets.contains(key.data()));
		for (std::size_t i = 0; i < key.size(); i++)
			key[i] = std::byte(i);
		CHECK(key[31] == std::byte(31));
		using sstring = std::basic_string<char, std::char_traits<char>, secret_allocator<char, B>>;
		sstring pass{secret_allocator<char, B>(secrets)};
		pass.reserve(64); /* past the inline buffer: contents live in the cache */
		CHECK(secrets.contains(pass.data()));
		pass = "correct horse battery staple";
		CHECK(secrets.contains(pass.data()));
		CHECK(pass.size() == 28);
		CHECK(secrets.stats().live_count == 2);
	}
	CHECK(secrets.stats().live_count == 0);
}
