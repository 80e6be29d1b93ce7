// SPDX-License-Identifier: MIT
/*
 * secretmem_churn.h - memfd_secret() page churn.
 *
 * secretmem (mm/secretmem.c) allocates a file's pages one at a time, at page
 * fault: secretmem_fault() takes one order-0 page and removes it from the
 * direct map with set_direct_map_invalid_noflush(); truncation on the last
 * close gives each page back with set_direct_map_default_noflush(). So the
 * operations are single pages: size 4096, alignment 4096.
 *
 * Model. A user is a process holding one secret memfd of S pages, with S
 * log-uniform in [1, max_pages] (S = floor((max_pages + 1)^u), u uniform in
 * [0, 1), clamped to [1, max_pages]): most users keep a few keys in a page or
 * two, a few keep megabytes. Users come and go as a birth-death population
 * around `users` (random.h draw_load(): a start with probability T/(T+L)).
 * A starting user touches all its pages at once (S allocations in a row, page
 * index order); an exiting user, chosen uniformly among the live ones, has
 * its file truncated, which frees its pages in index order (S frees in a row).
 *
 * Live size: about users x E[S] pages, E[S] = max_pages / ln(max_pages + 1)
 * (82 pages, 328 KiB, for the default 512), i.e. about 1300 pages (5 MiB)
 * for 16 users. The sequence is cut at exactly `ops` operations (a user may
 * be cut in the middle of its faults or of its truncation); with `drain`
 * every page still live is then freed in a seeded random order.
 */
#pragma once

#include "workload/op.h"
#include "workload/random.h"

#include <unmapped_alloc/config.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace ua::workload {

struct secretmem_params {
	std::uint64_t seed = 1;
	std::size_t ops = 100000;
	std::size_t users = 16;      /* mean number of live users */
	std::size_t max_pages = 512; /* largest secret file, in pages (2 MiB) */
	bool drain = false;
};

/* Pages of one user's secret file, log-uniform in [1, max_pages]. */
inline std::size_t draw_secret_pages(rng_t &rng, std::size_t max_pages)
{
	double v = std::pow(double(max_pages) + 1.0, draw_unit(rng));
	std::size_t s = std::size_t(v);
	return s < 1 ? 1 : (s > max_pages ? max_pages : s);
}

inline workload generate_secretmem_churn(const secretmem_params &p, std::string name = "secretmem_churn")
{
	workload w{std::move(name), {}};
	w.ops.reserve(p.ops + p.max_pages);
	rng_t rng(p.seed);
	std::vector<std::vector<std::uint64_t>> users;  /* each user's pages, in index order */
	std::uint64_t next_id = 1;
	const std::size_t max_pages = p.max_pages ? p.max_pages : 1;

	while (w.ops.size() < p.ops && p.users) {
		if (draw_load(rng, users.size(), p.users)) {
			std::size_t pages = draw_secret_pages(rng, max_pages);
			std::vector<std::uint64_t> ids(pages);
			for (auto &id : ids) {
				id = next_id++;
				w.ops.push_back(op::make_alloc(id, page_size, page_size, "secretmem").of(memory_kind::secret));
			}
			users.push_back(std::move(ids));
		} else {
			std::size_t i = std::size_t(draw_below(rng, users.size()));
			for (std::uint64_t id : users[i])
				w.ops.push_back(op::make_free(id));
			users[i] = std::move(users.back());
			users.pop_back();
		}
	}
	finish_sequence(w.ops, p.ops, p.drain, rng);
	return w;
}

}  // namespace ua::workload
