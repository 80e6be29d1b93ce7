// SPDX-License-Identifier: MIT
/*
 * scripts/ab/runner.h - one allocator on the benchmarks' steady state, behind
 * an interface with no library type in it, so that two builds of the library
 * (variant.cpp compiled twice, each with its namespace renamed) can live in
 * one process. See scripts/ab-compare.sh.
 */
#pragma once

#include <cstddef>

struct ab_runner {
	virtual void fill() = 0;                                        /* build the live set */
	virtual double turn(std::size_t warm, std::size_t steps) = 0;  /* ns per operation */
	virtual ~ab_runner() = default;
};

/* kind: "arena" (the arena over plain chunks) or "cache" (text cache, simulated backend, one shard). */
ab_runner *ab_make_old(const char *kind, std::size_t live, std::size_t steps, unsigned long seed);
ab_runner *ab_make_new(const char *kind, std::size_t live, std::size_t steps, unsigned long seed);
