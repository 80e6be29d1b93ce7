// SPDX-License-Identifier: MIT
/*
 * replay/read_probe.h - the read-latency probe of the real backend
 * (read_ns_ratio, replay_ops.h): random 1-byte reads over the frames still
 * in the direct map after a workload, against the same reads over an intact
 * direct map (a second real backend of the same size that nothing changed).
 */
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include <unmapped_alloc/mapping.h>

namespace ua::replay {


namespace detail {

struct read_set {
	std::vector<std::uint64_t> offsets; /* byte offsets into the view */
};

inline read_set make_read_set(std::uint64_t nr_pages, std::size_t n, std::uint64_t seed)
{
	read_set rs;
	rs.offsets.reserve(n);
	std::uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	for (std::size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		std::uint64_t pfn = (x >> 16) % nr_pages;
		rs.offsets.push_back((pfn << page_shift) | ((x & 0xfff) & ~std::uint64_t{63}));
	}
	return rs;
}

/* The offsets whose frame is still in the direct map of b. */
template <class B>
std::vector<std::uint64_t> readable(const B &b, const read_set &rs)
{
	std::vector<std::uint64_t> out;
	out.reserve(rs.offsets.size());
	for (std::uint64_t off : rs.offsets)
		if (b.direct_map_state(off >> page_shift) != dm_state::invalid)
			out.push_back(off);
	return out;
}

/* One pass of 1-byte reads at base + each offset: ns per read. */
inline double read_pass(const std::byte *base, const std::vector<std::uint64_t> &offs)
{
	if (offs.empty())
		return 0;
	const auto *b = reinterpret_cast<const volatile unsigned char *>(base);
	unsigned sink = 0;
	auto t0 = std::chrono::steady_clock::now();
	for (std::uint64_t off : offs)
		sink += b[off];
	double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
	asm volatile("" : : "r"(sink)); /* the reads must happen */
	return ns / double(offs.size());
}

/*
 * The same reads over two views, interleaved so that load from elsewhere on
 * the machine hits both alike: one untimed pass each first (it faults in
 * what a split left unmapped), then `rounds` pairs of timed passes. The
 * ratio is best pass over best pass: interference from other processes only
 * ever adds time, so the fastest pass of each is the least disturbed (the
 * median of the pairs' ratios is kept as a second opinion).
 */
struct read_comparison {
	double ns = 0, ref_ns = 0, ratio = 0, median_ratio = 0;
};

inline read_comparison compare_reads(const std::byte *a, const std::byte *ref, const std::vector<std::uint64_t> &offs,
				     int rounds)
{
	(void)read_pass(a, offs);
	(void)read_pass(ref, offs);
	read_comparison c;
	std::vector<double> ratios;
	for (int i = 0; i < rounds; i++) {
		const bool ref_first = i % 2; /* neither side always runs second */
		double y = ref_first ? read_pass(ref, offs) : 0;
		double x = read_pass(a, offs);
		if (!ref_first)
			y = read_pass(ref, offs);
		c.ns = (c.ns == 0 || x < c.ns) ? x : c.ns;
		c.ref_ns = (c.ref_ns == 0 || y < c.ref_ns) ? y : c.ref_ns;
		if (y > 0)
			ratios.push_back(x / y);
	}
	if (!ratios.empty()) {
		std::nth_element(ratios.begin(), ratios.begin() + long(ratios.size() / 2), ratios.end());
		c.median_ratio = ratios[ratios.size() / 2];
	}
	c.ratio = c.ref_ns > 0 ? c.ns / c.ref_ns : 0;
	return c;
}

/*
 * An intact direct map to compare with: a real backend of the same size that
 * no allocator ever touches (all 2 MiB pages PMD-mapped), built once per size
 * and kept for the process. Runs on several threads share it: only reads
 * touch it after construction, which is under the lock.
 */
inline const linux_backend *reference_view(std::uint64_t nr_pages)
{
	static std::mutex lock;
	static std::map<std::uint64_t, std::unique_ptr<linux_backend>> views;
	std::lock_guard<std::mutex> g(lock);
	auto &v = views[nr_pages];
	if (!v)
		v = std::make_unique<linux_backend>(nr_pages);
	return v->ok() ? v.get() : nullptr;
}

}  // namespace detail


}  // namespace ua::replay
