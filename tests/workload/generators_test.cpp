// Tests for the generators: bpf_churn.h, module_churn.h, secretmem_churn.h, sockex1.h.
#include "workload/workload.h"

#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <unordered_map>

namespace fs = std::filesystem;
using namespace ua::workload;

namespace {

/* Mean number of live allocations and live bytes, averaged over every op of a valid sequence. */
struct live_means {
	double count = 0, bytes = 0;
};

live_means average_live(const std::vector<op> &ops, std::size_t from = 0)
{
	std::unordered_map<std::uint64_t, std::size_t> live;
	double count = 0, bytes = 0;
	std::size_t cur = 0;
	for (std::size_t i = 0; i < ops.size(); i++) {
		if (ops[i].k == op::alloc) {
			live[ops[i].id] = ops[i].size;
			cur += ops[i].size;
		} else {
			cur -= live[ops[i].id];
			live.erase(ops[i].id);
		}
		if (i >= from) {
			count += double(live.size());
			bytes += double(cur);
		}
	}
	double n = double(ops.size() - from);
	return {count / n, bytes / n};
}

/* Band of the mix a size falls in, 0..3. */
std::size_t band_of(std::size_t size)
{
	for (std::size_t b = 0; b < std::size(bpf_size_bands); b++)
		if (size < bpf_size_bands[b].hi || b + 1 == std::size(bpf_size_bands))
			return b;
	return 0;
}

module_listing small_listing()
{
	auto r = parse_modules("Module Size Used by\n"
			       "a 12288 0\nb 16384 0\nc 4096 0\nd 8192 0\ne 1146880 1 f\nf 2809856 0\n"
			       "g 5000 0\nh 61440 0\n",
			       "small");
	REQUIRE(r.ok());
	return r.value;
}

}  // namespace

TEST_CASE("bpf churn: deterministic per seed, different across seeds, valid, exact length")
{
	bpf_churn_params p;
	p.ops = 20000;
	auto a = generate_bpf_churn(p);
	auto b = generate_bpf_churn(p);
	CHECK(a.ops == b.ops);
	CHECK(a.ops.size() == 20000);
	CHECK(validate(a) == "");
	p.seed = 2;
	auto c = generate_bpf_churn(p);
	CHECK_FALSE(a.ops == c.ops);
	CHECK(validate(c) == "");

	p.drain = true;
	auto d = generate_bpf_churn(p);
	CHECK(validate(d) == "");
	auto st = measure(d);
	CHECK(st.live_count == 0);
	CHECK(d.ops.size() > 20000);
	CHECK(std::equal(c.ops.begin(), c.ops.end(), d.ops.begin()));  /* drain only appends */

	auto def = generate_bpf_churn(bpf_churn_params{});
	CHECK(def.ops.size() == 200000);
	CHECK(validate(def) == "");
}

TEST_CASE("bpf churn: sizes follow the published mix, alignment 64")
{
	bpf_churn_params p;
	p.ops = 200000;
	auto w = generate_bpf_churn(p);
	std::size_t n = 0, under500 = 0, under2k = 0;
	std::size_t bands[4] = {};
	for (const auto &o : w.ops) {
		if (o.k != op::alloc)
			continue;
		n++;
		CHECK(o.align == 64);
		CHECK(o.size >= 128);
		CHECK(o.size <= 65536);
		under500 += o.size < 500;
		under2k += o.size < 2048;
		bands[band_of(o.size)]++;
	}
	REQUIRE(n > 50000);
	/* 50% under 500 B, 75% under 2 KiB; binomial sd at n=100k is ~0.16%, so 1.5% is wide. */
	CHECK(std::fabs(double(under500) / double(n) - 0.50) < 0.015);
	CHECK(std::fabs(double(under2k) / double(n) - 0.75) < 0.015);
	for (std::size_t b = 0; b < 4; b++)
		CHECK(std::fabs(double(bands[b]) / double(n) - bpf_size_bands[b].weight) < 0.015);
}

TEST_CASE("bpf churn: the server live set fluctuates around 140 programs, 0.5 MB")
{
	auto w = generate_bpf_churn(bpf_churn_params::server());
	auto m = average_live(w.ops, 1000);
	CHECK(m.count > 140 * 0.9);
	CHECK(m.count < 140 * 1.1);
	/* 140 x 3563 B = 499 kB; sizes are heavy-tailed, so allow 25%. */
	CHECK(m.bytes > 499e3 * 0.75);
	CHECK(m.bytes < 499e3 * 1.25);
	std::size_t long_lived = 0, replaced = 0;
	for (const auto &o : w.ops)
		long_lived += o.k == op::alloc && o.tag == "long_lived";
	replaced = long_lived - 40;
	CHECK(replaced > 0);
	CHECK(replaced < 200000 / 50);  /* about 1% of events */
}

TEST_CASE("bpf churn: the desktop preset is pairs of small cgroup programs")
{
	auto p = bpf_churn_params::desktop();
	p.ops = 50000;
	auto w = generate_bpf_churn(p);
	CHECK(validate(w) == "");
	auto m = average_live(w.ops, 1000);
	CHECK(m.count > 104 * 0.85);
	CHECK(m.count < 104 * 1.15);
	std::size_t pairs = 0;
	for (std::size_t i = 0; i + 1 < w.ops.size(); i++) {
		const op &o = w.ops[i];
		if (o.k == op::alloc && o.tag == "sd_fw_ingress") {
			CHECK(o.size >= 128);
			CHECK(o.size <= 500);
			CHECK(w.ops[i + 1].tag == "sd_fw_egress");
			CHECK(w.ops[i + 1].size == o.size);
			pairs++;
		}
		CHECK(o.tag != "on_demand");
	}
	CHECK(pairs > 1000);
}

TEST_CASE("module layout: page-aligned regions summing to the listed size")
{
	for (std::size_t pages = 1; pages < 2000; pages++) {
		std::size_t size = pages * 4096;
		auto l = split_module(size);
		CAPTURE(size);
		CHECK(l.core() == size);
		for (std::size_t r : {l.text, l.data, l.rodata, l.ro_after_init, l.init})
			CHECK(r % 4096 == 0);
		CHECK(l.text >= 4096);
		CHECK(l.init >= 4096);
		CHECK(l.ro_after_init == (pages >= 4 ? 4096u : 0u));
		if (pages >= 20) {
			double t = double(l.text) / double(size);
			CHECK(t > 0.5);
			CHECK(t < 0.65);
			CHECK(l.rodata > l.data);
		}
	}
	CHECK(split_module(5000).core() == 8192);  /* old kernels: rounded up to pages */
	CHECK(split_module(8192, 0).init == 0);
	CHECK(split_module(409600, 10).init == 40960);
}

TEST_CASE("module churn: initial load follows the listing and the kernel's region order")
{
	auto l = small_listing();
	module_churn_params p;
	p.rounds = 0;
	auto w = generate_module_churn(l, p);
	CHECK(validate(w) == "");
	/* everything loaded, init regions freed: live bytes == sum of listed sizes rounded to pages */
	std::size_t expect = 0;
	for (const auto &m : l.modules)
		expect += (m.size + 4095) / 4096 * 4096;
	auto st = measure(w);
	CHECK(st.live_bytes == expect);
	for (const auto &o : w.ops)
		if (o.k == op::alloc) {
			CHECK(o.align == 4096);
			CHECK(o.size % 4096 == 0);
		}
	/* load order is bottom-up: h first; its regions text, data, rodata, ro_after_init, init, free init */
	REQUIRE(w.ops.size() >= 6);
	CHECK(w.ops[0].tag == "h.text");
	CHECK(w.ops[1].tag == "h.data");
	CHECK(w.ops[2].tag == "h.rodata");
	CHECK(w.ops[3].tag == "h.ro_after_init");
	CHECK(w.ops[4].tag == "h.init");
	CHECK(w.ops[5] == op::make_free(w.ops[4].id));
	CHECK(w.ops[6].tag == "g.text");
}

TEST_CASE("module churn: deterministic, seeded, valid, keeps every module loaded between rounds")
{
	auto l = small_listing();
	module_churn_params p;
	p.rounds = 200;
	p.batch = 3;
	auto a = generate_module_churn(l, p);
	auto b = generate_module_churn(l, p);
	CHECK(a.ops == b.ops);
	CHECK(validate(a) == "");
	p.seed = 7;
	auto c = generate_module_churn(l, p);
	CHECK_FALSE(a.ops == c.ops);
	CHECK(measure(a).live_bytes == measure(generate_module_churn(l, {1, 0, 3, 10, false})).live_bytes);

	p.unload_all = true;
	auto d = generate_module_churn(l, p);
	CHECK(validate(d) == "");
	CHECK(measure(d).live_count == 0);

	/* each round frees the core regions of 3 modules and reallocates them */
	std::map<std::string, std::size_t> reloads;
	for (const auto &o : a.ops)
		if (o.k == op::alloc && o.tag.size() > 5 && o.tag.substr(o.tag.size() - 5) == ".text")
			reloads[o.tag]++;
	std::size_t total = 0;
	for (auto &[tag, n] : reloads)
		total += n;
	CHECK(total == l.modules.size() + 200 * 3);
	CHECK(reloads.size() == l.modules.size());
}

TEST_CASE("module churn over every real listing")
{
	const fs::path dir = UA_SHARED_WORKLOADS;
	if (!fs::is_directory(dir)) {
		MESSAGE("skipping: " << dir.string() << " not present");
		return;
	}
	std::size_t files = 0;
	for (const auto &ent : fs::directory_iterator(dir)) {
		const std::string file = ent.path().filename().string();
		if (file.rfind("lsmod_", 0) != 0 && file.rfind("proc_modules_", 0) != 0)
			continue;
		CAPTURE(file);
		auto l = read_modules(ent.path().string());
		REQUIRE(l.ok());
		auto w = generate_module_churn(l.value, module_churn_params{});
		CHECK(validate(w) == "");
		std::size_t listed = 0;
		for (const auto &m : l.value.modules)
			listed += m.size;
		CHECK(measure(w).live_bytes == listed);  /* sizes are page multiples in all of them */
		files++;
	}
	CHECK(files == 5);
}

TEST_CASE("secretmem churn: pages, seeded, valid, live size around users x E[S]")
{
	secretmem_params p;
	auto a = generate_secretmem_churn(p);
	auto b = generate_secretmem_churn(p);
	CHECK(a.ops == b.ops);
	CHECK(a.ops.size() == p.ops);
	CHECK(validate(a) == "");
	p.seed = 3;
	auto c = generate_secretmem_churn(p);
	CHECK_FALSE(a.ops == c.ops);
	for (const auto &o : a.ops)
		if (o.k == op::alloc) {
			CHECK(o.size == 4096);
			CHECK(o.align == 4096);
		}
	/* E[S] = 512 / ln 513 = 82 pages; 16 users -> ~1310 pages. Allocation and truncation
	 * runs weight big users per op, so the per-op average sits above; bound it loosely. */
	auto m = average_live(a.ops, 5000);
	double expect = 16.0 * 512.0 / std::log(513.0);
	CHECK(m.count > expect * 0.8);
	CHECK(m.count < expect * 1.6);

	p.drain = true;
	auto d = generate_secretmem_churn(p);
	CHECK(validate(d) == "");
	CHECK(measure(d).live_count == 0);

	std::map<std::size_t, std::size_t> hist;
	rng_t rng(9);
	double sum = 0;
	for (int i = 0; i < 100000; i++) {
		std::size_t s = draw_secret_pages(rng, 512);
		REQUIRE(s >= 1);
		REQUIRE(s <= 512);
		sum += double(s);
		hist[s < 2 ? 0 : s < 64 ? 1 : 2]++;
	}
	CHECK(std::fabs(sum / 100000 - 81.6) < 3);  /* E[floor((M+1)^u)] ~ M / ln(M+1) - 0.5 */
	CHECK(hist[0] > 10000);                     /* P(S = 1) = ln 2 / ln 513 = 11% */
}

TEST_CASE("sockex1: N instances of 320 B (pack) or one page (before), all loaded then all freed")
{
	for (std::size_t n : sockex1_instances) {
		for (auto model : {bpf_alloc_model::pack, bpf_alloc_model::page}) {
			auto w = generate_sockex1({n, model, 1});
			CAPTURE(n);
			CHECK(validate(w) == "");
			REQUIRE(w.ops.size() == 2 * n);
			auto st = measure(w);
			CHECK(st.allocs == n);
			CHECK(st.live_count == 0);
			const std::size_t size = model == bpf_alloc_model::pack ? 320 : 4096;
			CHECK(st.peak_count == n);
			CHECK(st.peak_bytes == n * size);
			for (std::size_t i = 0; i < n; i++) {
				CHECK(w.ops[i].k == op::alloc);
				CHECK(w.ops[i].size == size);
				CHECK(w.ops[i].align == (model == bpf_alloc_model::pack ? 64u : 4096u));
				CHECK(w.ops[n + i].k == op::free);
			}
		}
	}
	auto a = generate_sockex1({1024, bpf_alloc_model::pack, 1});
	auto b = generate_sockex1({1024, bpf_alloc_model::pack, 2});
	CHECK(a.ops == generate_sockex1({1024, bpf_alloc_model::pack, 1}).ops);
	CHECK_FALSE(a.ops == b.ops);  /* the free order depends on the seed */
	CHECK(a.name == "sockex1_1024_pack");
}
