// libFuzzer target: arbitrary operation sequences on a text, a secret and a
// ro cache (simulated backend), every answer checked against a reference
// model of live allocations:
//   - alloc: the model's error for a bad request (flags, size 0, alignment,
//     too large); otherwise success (or ENOMEM only when the model says memory
//     may run out, or with ua_norefill), aligned, overlapping no live one;
//   - free / free_deferred of live starts, interior pointers, pointers into
//     deferred-pending allocations, double frees, foreign pointers, nullptr:
//     success exactly for a live start, the model's error otherwise;
//   - write: inside one live allocation only; find_allocation / contains.
// At the end of each input everything left is freed, deferred frees are
// waited for, and the caches must hold nothing live and pass their
// consistency walks. Build: clang++ -fsanitize=fuzzer,address,undefined
// (scripts/test.sh, stage fuzz); run: cache_fuzz tests/fuzz/corpus.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include <unmapped_alloc/unmapped_alloc.h>

using namespace ua;
using backend = sim_direct_map;

namespace {

[[noreturn]] void fail(const char *what, unsigned long long a = 0, unsigned long long b = 0)
{
	std::fprintf(stderr, "cache_fuzz: %s (%llx, %llx)\n", what, a, b);
	std::abort();
}
#define FUZZ_CHECK(cond, ...) \
	do { \
		if (!(cond)) \
			fail(#cond __VA_OPT__(, ) __VA_ARGS__); \
	} while (0)

constexpr std::uint64_t machine_pages = std::uint64_t{1} << 22; /* 16 GiB, simulated */
constexpr std::size_t memory_budget = std::size_t{8} << 30;      /* below this, alloc must succeed */

struct world {
	machine<backend> m{machine_pages};
	std::unique_ptr<unmapped_cache<backend>> caches[3];
	world()
	{
		const cache_config cfgs[3] = {text_cache_config(), secret_cache_config(), ro_cache_config()};
		for (unsigned i = 0; i < 3; i++)
			caches[i] = std::make_unique<unmapped_cache<backend>>(m, cfgs[i]);
	}
};

world &the_world()
{
	static world *w = new world; /* lives for the process: libFuzzer never returns from main */
	return *w;
}

struct live_alloc {
	std::size_t size;    /* requested */
	std::size_t rounded; /* what the cache may report: granule- or chunk-rounded */
};

struct model {
	std::map<std::uintptr_t, live_alloc> live[3];
	std::map<std::uintptr_t, std::size_t> deferred[3]; /* freed with free_deferred (rounded size): live until a grace period */
	std::vector<std::uintptr_t> gone;     /* freed pointers, for double frees */
	std::size_t bytes = 0;

	/* The live allocation of cache c containing p (within its rounded size), or nullptr. */
	const std::pair<const std::uintptr_t, live_alloc> *find(unsigned c, std::uintptr_t p) const
	{
		auto it = live[c].upper_bound(p);
		if (it == live[c].begin())
			return nullptr;
		--it;
		return p - it->first < it->second.rounded ? &*it : nullptr;
	}
	bool in_deferred(unsigned c, std::uintptr_t p) const
	{
		auto it = deferred[c].upper_bound(p);
		return it != deferred[c].begin() && p - std::prev(it)->first < std::prev(it)->second;
	}
	bool overlaps(unsigned c, std::uintptr_t a, std::size_t n) const
	{
		auto it = live[c].lower_bound(a);
		if (it != live[c].end() && it->first < a + n)
			return true;
		return it != live[c].begin() && std::prev(it)->first + std::prev(it)->second.size > a;
	}
};

std::size_t pick_size(FuzzedDataProvider &in)
{
	switch (in.ConsumeIntegralInRange<int>(0, 7)) {
	case 0: return 0;
	case 1: return in.ConsumeIntegralInRange<std::size_t>(1, 64);
	case 2: return in.ConsumeIntegralInRange<std::size_t>(1, 4096);
	case 3: return in.ConsumeIntegralInRange<std::size_t>(1, 64 << 10);
	case 4: return in.ConsumeIntegralInRange<std::size_t>(1, chunk_size);
	case 5: return in.ConsumeIntegralInRange<std::size_t>(chunk_size - 64, chunk_size + 64);
	case 6: return in.ConsumeIntegralInRange<std::size_t>(chunk_size, 9 * chunk_size);
	default: return in.ConsumeBool() ? unmapped_cache<backend>::max_size() + in.ConsumeIntegral<std::uint8_t>()
					  : in.ConsumeIntegral<std::size_t>();
	}
}

std::size_t pick_align(FuzzedDataProvider &in)
{
	switch (in.ConsumeIntegralInRange<int>(0, 3)) {
	case 0: return 1;
	case 1: return std::size_t{1} << in.ConsumeIntegralInRange<int>(0, 22); /* up to 2x the chunk size */
	case 2: return in.ConsumeIntegral<std::uint32_t>();                  /* mostly not a power of two */
	default: return 0;
	}
}

/* A pointer to hand to free/write/lookup, and what it is. */
std::uintptr_t pick_pointer(FuzzedDataProvider &in, const model &md, unsigned c)
{
	switch (in.ConsumeIntegralInRange<int>(0, 6)) {
	case 0:
	case 1: /* a live start */
		if (!md.live[c].empty()) {
			auto it = md.live[c].begin();
			std::advance(it, in.ConsumeIntegralInRange<std::size_t>(0, md.live[c].size() - 1));
			return it->first;
		}
		return 0;
	case 2: /* interior of a live one */
		if (!md.live[c].empty()) {
			auto it = md.live[c].begin();
			std::advance(it, in.ConsumeIntegralInRange<std::size_t>(0, md.live[c].size() - 1));
			return it->first + in.ConsumeIntegralInRange<std::size_t>(1, it->second.rounded + 64);
		}
		return 0;
	case 3: /* freed before: double free or its reuse */
		if (!md.gone.empty())
			return md.gone[in.ConsumeIntegralInRange<std::size_t>(0, md.gone.size() - 1)];
		return 0;
	case 4: /* any live start of another cache: foreign here */
		for (unsigned o = 0; o < 3; o++)
			if (o != c && !md.live[o].empty())
				return md.live[o].begin()->first;
		return 0;
	case 5: return 0;
	default: return in.ConsumeIntegral<std::uintptr_t>();
	}
}

void do_alloc(unmapped_cache<backend> &cache, model &md, unsigned c, FuzzedDataProvider &in)
{
	std::size_t size = pick_size(in), align = pick_align(in);
	ua_flags flags = in.ConsumeBool() ? in.ConsumeIntegral<std::uint8_t>() : (in.ConsumeBool() ? ua_zero : 0);
	auto r = cache.alloc(size, align, flags);
	error want = error::ok;
	if (flags & ~ua_valid_flags)
		want = error::bad_flags;
	else if (size == 0)
		want = error::zero_size;
	else if (!is_pow2(align) || align > chunk_size)
		want = error::bad_alignment;
	else if (size > unmapped_cache<backend>::max_size())
		want = error::too_large;
	if (want != error::ok) {
		FUZZ_CHECK(r.err == want, unsigned(r.err), unsigned(want));
		return;
	}
	if (!r.ok()) {
		FUZZ_CHECK(r.err == error::no_memory, unsigned(r.err));
		FUZZ_CHECK((flags & ua_norefill) || md.bytes + size > memory_budget, size, md.bytes);
		return;
	}
	auto a = reinterpret_cast<std::uintptr_t>(r.value);
	std::size_t granule = cache.config().granule;
	FUZZ_CHECK(a % (align > granule ? align : granule) == 0, a, align);
	for (unsigned o = 0; o < 3; o++)
		FUZZ_CHECK(!md.overlaps(o, a, size), a, size);
	std::size_t rounded = size > chunk_size ? align_up(size, chunk_size) : align_up(size, granule);
	md.live[c][a] = {size, rounded};
	md.deferred[c].erase(a);
	md.bytes += rounded;
	auto f = cache.find_allocation(reinterpret_cast<void *>(a + size - 1));
	FUZZ_CHECK(f.ok() && f.value.addr == a && f.value.size >= size, a, f.value.addr);
}

void do_free(unmapped_cache<backend> &cache, model &md, unsigned c, FuzzedDataProvider &in, bool deferred)
{
	std::uintptr_t p = pick_pointer(in, md, c);
	error e = deferred ? cache.free_deferred(reinterpret_cast<void *>(p)) : cache.free(reinterpret_cast<void *>(p));
	if (p == 0) {
		FUZZ_CHECK(e == error::ok, unsigned(e));
		return;
	}
	auto it = md.live[c].find(p);
	if (it != md.live[c].end()) {
		FUZZ_CHECK(e == error::ok, unsigned(e), p);
		md.bytes -= it->second.rounded;
		std::size_t rounded = it->second.rounded;
		md.live[c].erase(it);
		md.gone.push_back(p);
		if (deferred)
			md.deferred[c][p] = rounded;
		return;
	}
	FUZZ_CHECK(e != error::ok, p);
	if (md.find(c, p))
		FUZZ_CHECK(e == error::interior_pointer, unsigned(e), p);
	else
		FUZZ_CHECK(e == error::not_live || e == error::foreign_pointer || e == error::interior_pointer, unsigned(e), p);
}

void do_write(unmapped_cache<backend> &cache, model &md, unsigned c, FuzzedDataProvider &in)
{
	std::uintptr_t p = pick_pointer(in, md, c);
	std::size_t len = in.ConsumeBool() ? in.ConsumeIntegralInRange<std::size_t>(0, 300) : in.ConsumeIntegral<std::size_t>();
	static const unsigned char buf[4096] = {};
	/* The backend copies len bytes from src: never pass more than buf holds unless it must be refused. */
	const void *src = in.ConsumeBool() ? buf : nullptr;
	auto *l = md.find(c, p);
	bool fits = l && p + len >= p && p + len <= l->first + l->second.size;
	if (fits && len > sizeof buf)
		return;
	error e = cache.write(reinterpret_cast<void *>(p), src, len);
	if (!p || !src)
		FUZZ_CHECK(e == error::null_pointer, unsigned(e));
	else if (len == 0)
		FUZZ_CHECK(e == error::zero_size, unsigned(e));
	else if (fits)
		FUZZ_CHECK(e == error::ok, unsigned(e), p);
	else if ((!l && !md.in_deferred(c, p)) || (l && (p + len < p || p + len > l->first + l->second.rounded)))
		FUZZ_CHECK(e != error::ok, p, len); /* a deferred-pending allocation is still writable */
}

void do_lookup(unmapped_cache<backend> &cache, model &md, unsigned c, FuzzedDataProvider &in)
{
	std::uintptr_t p = pick_pointer(in, md, c);
	auto f = cache.find_allocation(reinterpret_cast<void *>(p));
	auto *l = md.find(c, p);
	if (l && p < l->first + l->second.size) {
		FUZZ_CHECK(f.ok() && f.value.addr == l->first && f.value.size >= l->second.size, p, f.value.addr);
		FUZZ_CHECK(cache.contains(reinterpret_cast<void *>(p)), p);
	} else if (f.ok()) {
		/* Only the rounding tail of a live one, or one whose deferred free has not run yet. */
		FUZZ_CHECK((l && l->first == f.value.addr) || md.deferred[c].count(f.value.addr), p, f.value.addr);
	}
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
	world &w = the_world();
	FuzzedDataProvider in(data, size);
	model md;
	bool shrunk = false, any_deferred = false;
	for (int ops = 0; in.remaining_bytes() && ops < 512; ops++) {
		unsigned c = in.ConsumeIntegralInRange<unsigned>(0, 2);
		auto &cache = *w.caches[c];
		switch (in.ConsumeIntegralInRange<int>(0, 7)) {
		case 0:
		case 1:
		case 2: do_alloc(cache, md, c, in); break;
		case 3: do_free(cache, md, c, in, false); break;
		case 4:
			do_free(cache, md, c, in, true);
			any_deferred = true;
			break;
		case 5: do_write(cache, md, c, in); break;
		case 6: do_lookup(cache, md, c, in); break;
		default:
			if (!shrunk) /* a grace period each: once per input keeps the fuzzer fast */
				cache.shrink(in.ConsumeIntegralInRange<std::size_t>(0, 3));
			shrunk = true;
			break;
		}
	}
	for (unsigned c = 0; c < 3; c++)
		for (auto &[a, l] : md.live[c])
			FUZZ_CHECK(w.caches[c]->free(reinterpret_cast<void *>(a)) == error::ok, a);
	if (any_deferred)
		rcu::barrier();
	for (auto &cache : w.caches) {
		auto st = cache->stats();
		FUZZ_CHECK(st.live_count == 0, st.live_count);
		FUZZ_CHECK(st.deferred_pending == 0, st.deferred_pending);
		FUZZ_CHECK(st.chunks == st.spare_chunks, st.chunks, st.spare_chunks); /* no empty chunk left in an arena */
		if (std::string why = cache->check_consistency(); !why.empty()) {
			std::fprintf(stderr, "%s\n", why.c_str());
			std::abort();
		}
	}
	if (std::string why = w.m.check_consistency(); !why.empty())
		fail(why.c_str());
	return 0;
}
