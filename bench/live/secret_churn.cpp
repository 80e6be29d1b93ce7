// SPDX-License-Identifier: MIT
/*
 * ua-secret-churn: secrets under churn on the running kernel, measured with
 * the kernel's own counters (docs/live.md, "Secrets under churn").
 *
 * For each memory (live/secret_churn.h: the library's cache over
 * memfd_secret, one memfd_secret per secret, OpenSSL's secure heap) and each
 * live-set size N MiB: allocate secrets of uniform random size in
 * [min, max] bytes, each written whole, until N MiB are live (fill); then
 * for --steps steps free a random live secret and allocate another
 * (churn); then free everything and destroy the memory (release). The
 * kernel's direct_map_level2/3_splits and DirectMap4k/2M/1G are read before
 * and after each phase; the table gives the deltas, per MiB of secrets,
 * the time and the cross-CPU calls (/proc/interrupts) per churn step, the
 * pages the memory held, and the state at start. The counters are global: a delta is an upper bound of what the run
 * caused. What a run splits stays split until reboot.
 *
 * Bounds: a run is not started when MemFree would go below --floor-gib
 * (default 6) with its memory taken, and stops early (said in the row) if
 * MemFree reaches the floor; SIGINT/SIGTERM/SIGHUP stop the run, which
 * releases what it holds and exits with 130.
 */
#include <time.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "live/proc_counters.h"
#include "live/secret_churn.h"
#include "live/stop.h"

namespace {

using ua::live::kernel_counters;

struct options {
	std::vector<std::string> memories{"cache", "naive", "openssl"};
	std::vector<std::size_t> mibs{4, 16, 64};
	std::size_t steps = 20000;
	std::size_t min_size = 16, max_size = 4096;
	std::uint64_t seed = 16;
	std::uint64_t floor_gib = 6;
};

std::vector<std::string> split(const std::string &s)
{
	std::vector<std::string> out;
	std::stringstream in(s);
	for (std::string item; std::getline(in, item, ',');)
		if (!item.empty())
			out.push_back(item);
	return out;
}

void usage(std::FILE *f)
{
	std::fputs("usage: ua-secret-churn [--memory cache,naive,openssl] [--mib 4,16,64] [--steps 20000]\n"
		   "                       [--min-size 16] [--max-size 4096] [--seed 16] [--floor-gib 6]\n"
		   "Secrets under churn on the running kernel; prints a markdown table of the kernel's\n"
		   "direct-map counter deltas per phase (docs/live.md). Needs memfd_secret (cache, naive)\n"
		   "and permission to lock memory; what a run splits stays split until reboot.\n",
		   f);
}

bool parse(int argc, char **argv, options *o)
{
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		auto value = [&]() -> const char * { return i + 1 < argc ? argv[++i] : nullptr; };
		const char *v = nullptr;
		if (a == "--help" || a == "-h") {
			usage(stdout);
			std::exit(0);
		} else if (a == "--memory" && (v = value())) {
			o->memories = split(v);
		} else if (a == "--mib" && (v = value())) {
			o->mibs.clear();
			for (auto &m : split(v))
				o->mibs.push_back(std::strtoull(m.c_str(), nullptr, 10));
		} else if (a == "--steps" && (v = value())) {
			o->steps = std::strtoull(v, nullptr, 10);
		} else if (a == "--min-size" && (v = value())) {
			o->min_size = std::strtoull(v, nullptr, 10);
		} else if (a == "--max-size" && (v = value())) {
			o->max_size = std::strtoull(v, nullptr, 10);
		} else if (a == "--seed" && (v = value())) {
			o->seed = std::strtoull(v, nullptr, 10);
		} else if (a == "--floor-gib" && (v = value())) {
			o->floor_gib = std::strtoull(v, nullptr, 10);
		} else {
			std::fprintf(stderr, "ua-secret-churn: bad argument '%s'\n", a.c_str());
			return false;
		}
	}
	for (std::size_t m : o->mibs)
		if (m == 0 || m > 1024) {
			std::fputs("ua-secret-churn: --mib values must be 1..1024\n", stderr);
			return false;
		}
	if (o->min_size == 0 || o->min_size > o->max_size || o->max_size > ua::page_size) {
		std::fputs("ua-secret-churn: need 0 < --min-size <= --max-size <= 4096 (secretmem faults a page at a time)\n",
			   stderr);
		return false;
	}
	return !o->memories.empty() && !o->mibs.empty();
}

double now_ns()
{
	timespec ts{};
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return double(ts.tv_sec) * 1e9 + double(ts.tv_nsec);
}

/* after - before of the direct-map figures, as "L2/L3 splits, DM4k/2M/1G kB". */
struct delta {
	long long l2 = 0, l3 = 0, c2 = 0, c3 = 0, dm4k = 0, dm2m = 0, dm1g = 0;
};
delta operator-(const kernel_counters &a, const kernel_counters &b)
{
	auto d = [](std::uint64_t x, std::uint64_t y) { return (long long)x - (long long)y; };
	return {d(a.l2_splits, b.l2_splits), d(a.l3_splits, b.l3_splits),     d(a.l2_collapses, b.l2_collapses),
		d(a.l3_collapses, b.l3_collapses), d(a.dm_4k_kb, b.dm_4k_kb), d(a.dm_2m_kb, b.dm_2m_kb),
		d(a.dm_1g_kb, b.dm_1g_kb)};
}
std::string show(const delta &d)
{
	char buf[160];
	std::snprintf(buf, sizeof buf, "%+lld / %+lld; %+lld / %+lld / %+lld", d.l2, d.l3, d.dm4k, d.dm2m, d.dm1g);
	return buf;
}

bool read(kernel_counters *c)
{
	auto r = ua::live::read_counters();
	if (!r) {
		std::fprintf(stderr, "ua-secret-churn: %s\n", r.error.c_str());
		return false;
	}
	*c = r.value;
	return true;
}

/*
 * Cross-CPU calls so far: the "CAL:" (function call) and "TLB:" (shootdown)
 * rows of /proc/interrupts, summed over CPUs. On x86 a kernel-range flush,
 * secretmem_fault()'s flush_tlb_kernel_range() of the page it took out of
 * the direct map, is an on_each_cpu() call (counted under CAL); user-range
 * flushes on other CPUs count under TLB. Global: anything else on the
 * machine adds to it. -1 when a row is missing.
 */
long long cross_cpu_calls()
{
	auto t = ua::live::detail::read_proc(ua::live::proc_root(), "interrupts");
	if (!t)
		return -1;
	long long sum = 0;
	for (const char *row : {"CAL:", "TLB:"}) {
		std::size_t pos = t.value.find(row);
		if (pos == std::string::npos)
			return -1;
		const char *p = t.value.c_str() + pos + 4;
		for (;;) {
			char *end = nullptr;
			long long v = std::strtoll(p, &end, 10);
			if (end == p)
				break;
			sum += v;
			p = end;
		}
	}
	return sum;
}

struct secret {
	void *p;
	std::size_t size;
};

/* One run; prints its table row. Returns false when the counters cannot be read. */
bool run(const options &o, const std::string &memory, std::size_t mib)
{
	kernel_counters start{}, filled{}, churned{}, released{};
	if (!read(&start))
		return false;
	const std::uint64_t floor_kb = o.floor_gib << 20;
	const std::uint64_t need_kb = 4 * (std::uint64_t(mib) << 10) + (64 << 10);
	auto skip = [&](const std::string &why) {
		std::printf("| %s | %zu | skipped: %s | | | | | | | | |\n", memory.c_str(), mib, why.c_str());
	};
	if (start.mem_free_kb < floor_kb + need_kb) {
		skip("MemFree " + std::to_string(start.mem_free_kb) + " kB is below the floor plus the run's memory");
		return true;
	}
	std::string why;
	auto mem = ua::live::make_secret_memory(memory, mib, &why);
	if (!mem) {
		skip(why);
		return true;
	}
	std::mt19937_64 rng(o.seed);
	std::uniform_int_distribution<std::size_t> size(o.min_size, o.max_size);
	std::vector<secret> live;
	std::string stopped;
	std::size_t live_bytes = 0;
	unsigned char byte = 1;
	auto alloc_one = [&]() -> bool {
		std::size_t s = size(rng);
		void *p = mem->alloc(s);
		if (!p) {
			stopped = "allocation failed";
			return false;
		}
		std::memset(p, byte++ | 1, s); /* the secret written: faults its pages in */
		live.push_back({p, s});
		live_bytes += s;
		return true;
	};
	auto low_memory = [&]() {
		kernel_counters c{};
		if (read(&c) && c.mem_free_kb < floor_kb) {
			stopped = "free memory floor";
			return true;
		}
		return false;
	};
	while (live_bytes < (mib << 20) && stopped.empty()) {
		if (live.size() % 4096 == 4095 && (low_memory() || ua::live::stop_requested())) {
			stopped = stopped.empty() ? "signal" : stopped;
			break;
		}
		(void)alloc_one();
	}
	const std::size_t secrets = live.size();
	if (!read(&filled))
		return false;
	std::size_t steps = 0;
	const long long tlb0 = cross_cpu_calls();
	const double t0 = now_ns();
	for (; steps < o.steps && stopped.empty(); steps++) {
		if (steps % 4096 == 4095 && (low_memory() || ua::live::stop_requested())) {
			stopped = stopped.empty() ? "signal" : stopped;
			break;
		}
		std::size_t i = rng() % live.size();
		mem->free(live[i].p, live[i].size);
		live_bytes -= live[i].size;
		live[i] = live.back();
		live.pop_back();
		if (!alloc_one())
			break;
	}
	const double ns_per_step = steps ? (now_ns() - t0) / double(steps) : 0;
	const long long tlb1 = cross_cpu_calls();
	const double tlb_per_step = steps && tlb0 >= 0 && tlb1 >= 0 ? double(tlb1 - tlb0) / double(steps) : -1;
	const std::size_t held = mem->pages_held();
	const std::string note = mem->note();
	if (!read(&churned))
		return false;
	for (const secret &s : live)
		mem->free(s.p, s.size);
	live.clear();
	mem.reset();
	if (!read(&released))
		return false;

	const delta fill = filled - start, churn = churned - filled, total = released - start;
	std::printf("| %s | %zu | %zu | %s | %s | %+.2f | %.0f | %.2f | %.2f | %s | %" PRIu64 "/%" PRIu64 ", %" PRIu64 "/%" PRIu64
		    "/%" PRIu64 ", %" PRIu64 " |\n",
		    memory.c_str(), mib, secrets, show(fill).c_str(), show(churn).c_str(),
		    double(fill.l2 + churn.l2) / double(mib), ns_per_step, tlb_per_step,
		    double(held) * double(ua::page_size) / double(std::size_t(mib) << 20),
		    ((stopped.empty() ? "whole" : "stopped: " + stopped + " after " + std::to_string(steps) + " steps") +
		     ", collapses " + std::to_string(total.c2) + "/" + std::to_string(total.c3) +
		     (note.empty() ? "" : "; " + note))
			    .c_str(),
		    start.l2_splits, start.l3_splits, start.dm_4k_kb, start.dm_2m_kb, start.dm_1g_kb, start.mem_free_kb);
	std::fflush(stdout);
	return true;
}

}  // namespace

int main(int argc, char **argv)
{
	options o;
	if (!parse(argc, argv, &o)) {
		usage(stderr);
		return 2;
	}
	ua::live::signal_guard guard;
	std::printf("Secrets of %zu-%zu B (uniform), %zu churn steps, seed %" PRIu64
		    "; deltas are L2 / L3 splits; DirectMap4k / 2M / 1G kB.\n\n",
		    o.min_size, o.max_size, o.steps, o.seed);
	std::puts("| memory | live MiB | secrets | fill: L2 / L3; DM4k / 2M / 1G | churn: L2 / L3; DM4k / 2M / 1G | "
		  "L2 splits per MiB | ns per churn step | IPIs (CAL+TLB) per churn step | MiB held per MiB of secrets | run | "
		  "state at start: L2/L3, DM4k/2M/1G kB, MemFree kB |");
	std::puts("|---|---:|---:|---|---|---:|---:|---:|---:|---|---|");
	for (std::size_t mib : o.mibs)
		for (const std::string &m : o.memories) {
			if (ua::live::stop_requested())
				return 130;
			if (!run(o, m, mib))
				return 1;
		}
	return ua::live::stop_requested() ? 130 : 0;
}
