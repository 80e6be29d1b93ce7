// SPDX-License-Identifier: MIT
/*
 * live/secret_plan.h - secret ops grouped into memfd_secret files.
 *
 * secretmem can free a page only by releasing its whole file (no hole
 * punching, the size set once: mm/secretmem.c), so a workload's page frees
 * must map onto file releases. A run of consecutive allocs whose frees are
 * consecutive too, in the same order (one user of
 * workload/secretmem_churn.h, or a whole secretmem-fill), is one file of
 * that many pages, sized when its first page faults and released at its
 * last free. Between those frees nothing else happens, so the kernel sees
 * the sequence op for op.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "workload/op.h"

namespace ua::live::detail {

/* Secret ops grouped into files (see the header comment). */
struct secret_plan {
	std::vector<std::size_t> group_of_op;   /* per op: its group (allocs and frees) */
	std::vector<std::size_t> pages;         /* per group */
	std::vector<std::size_t> release_at;    /* per group: the op that releases it (npos: never) */
	std::vector<std::size_t> index_of_op;   /* per alloc op: its page in the file */
};

inline secret_plan plan_secret_files(const std::vector<workload::op> &ops)
{
	constexpr std::size_t npos = std::size_t(-1);
	std::unordered_map<std::uint64_t, std::size_t> free_at, alloc_at;
	for (std::size_t i = 0; i < ops.size(); i++)
		if (ops[i].k == workload::op::free)
			free_at[ops[i].id] = i;
	auto freed = [&](std::uint64_t id) {
		auto it = free_at.find(id);
		return it == free_at.end() ? npos : it->second;
	};
	secret_plan p;
	p.group_of_op.assign(ops.size(), npos);
	p.index_of_op.assign(ops.size(), 0);
	std::unordered_map<std::uint64_t, std::size_t> group_of_id;
	for (std::size_t i = 0; i < ops.size(); i++) {
		const auto &o = ops[i];
		if (o.k == workload::op::alloc) {
			bool join = false;
			if (i > 0 && ops[i - 1].k == workload::op::alloc && !p.pages.empty()) {
				const std::size_t f0 = freed(ops[i - 1].id), f1 = freed(o.id);
				join = (f0 == npos && f1 == npos) || (f0 != npos && f1 == f0 + 1);
			}
			if (!join) {
				p.pages.push_back(0);
				p.release_at.push_back(npos);
			}
			const std::size_t g = p.pages.size() - 1;
			p.group_of_op[i] = g;
			p.index_of_op[i] = p.pages[g]++;
			group_of_id[o.id] = g;
			const std::size_t f = freed(o.id);
			if (f != npos && (p.release_at[g] == npos || f > p.release_at[g]))
				p.release_at[g] = f;
		} else if (auto it = group_of_id.find(o.id); it != group_of_id.end()) {
			p.group_of_op[i] = it->second;
		}
	}
	return p;
}

}  // namespace ua::live::detail
