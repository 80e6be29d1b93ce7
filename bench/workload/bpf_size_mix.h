// SPDX-License-Identifier: MIT
/*
 * bpf_size_mix.h - the published BPF program size mix, as one exact distribution.
 *
 * Published facts (Meta, LSFMM 2022/2023): 50% of loaded BPF programs are under
 * 500 bytes, 75% under 2 KiB, and datapath programs add a few of 1-30 KiB. We
 * turn that into four log-uniform bands (sizes in bytes, as allocated):
 *
 *   50%  [   128,    500)   small cgroup / LSM / tracing programs
 *   25%  [   500,   2048)
 *   20%  [  2048,  16384)   larger tracing and networking programs
 *    5%  [ 16384,  65536]   datapath programs (Cilium, Katran, security agents)
 *
 * Log-uniform inside a band: size = lo * (hi/lo)^u with u uniform in [0,1).
 * The mix is documented in docs/workloads.md and shared by tests, benchmarks
 * and the report, so every figure uses the same sizes.
 */
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>

namespace ua::workload {

struct size_band {
	double weight;
	std::size_t lo, hi;
};

inline constexpr size_band bpf_size_bands[] = {
	{0.50, 128, 500},
	{0.25, 500, 2048},
	{0.20, 2048, 16384},
	{0.05, 16384, 65536},
};

/* Draws one program size from the mix. Deterministic for a given generator state. */
template <class Rng>
std::size_t bpf_size(Rng &rng)
{
	std::uniform_real_distribution<double> u01(0.0, 1.0);
	double pick = u01(rng);
	for (const auto &b : bpf_size_bands) {
		if (pick < b.weight || &b == &bpf_size_bands[std::size(bpf_size_bands) - 1]) {
			double u = u01(rng);
			double v = double(b.lo) * std::pow(double(b.hi) / double(b.lo), u);
			std::size_t s = std::size_t(v);
			if (s < b.lo)
				s = b.lo;
			if (s > b.hi)
				s = b.hi;
			return s;
		}
		pick -= b.weight;
	}
	return bpf_size_bands[0].lo;
}

}  // namespace ua::workload
