// SPDX-License-Identifier: MIT
/*
 * op.h - the operation model every workload is written in.
 *
 * A workload is a named sequence of operations, nothing more: `alloc` asks for
 * SIZE bytes aligned to ALIGN under a caller-chosen ID, `free` returns the
 * allocation made under an ID. It knows nothing about the allocator that will
 * replay it, so the same sequence drives the simulated backend, the real one,
 * the kernel-design baselines and jemalloc alike (data flows one way:
 * workload -> allocator).
 *
 * Rules, checked by validate():
 *  - an alloc's ID must not be live (IDs may be reused once freed; the
 *    generators never reuse them, so a replay can index by ID directly);
 *  - a free must name a live ID;
 *  - size > 0, alignment a power of two.
 * A workload may end with allocations still live: the live set at the end is
 * what a fragmentation measurement looks at.
 *
 * Errors in this directory are values, never exceptions: parse_result<T>
 * carries either a value or a message ("file:line: what is wrong");
 * validate() returns "" or the first violation, like check_consistency()
 * (include/unmapped_alloc/check.h). Only std::bad_alloc can escape.
 */
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ua::workload {

struct op {
	enum kind : std::uint8_t { alloc, free };

	kind k = alloc;
	std::uint64_t id = 0;
	std::size_t size = 0;   /* alloc only: bytes requested */
	std::size_t align = 1;  /* alloc only: power of two */
	std::string tag;        /* optional label for reports ("ext4.text"); not part of equality */

	static op make_alloc(std::uint64_t id, std::size_t size, std::size_t align = 1, std::string tag = {})
	{
		return op{alloc, id, size, align, std::move(tag)};
	}
	static op make_free(std::uint64_t id) { return op{free, id, 0, 1, {}}; }

	/* Two ops are equal when they do the same thing; tags are labels only. */
	friend bool operator==(const op &a, const op &b) noexcept
	{
		if (a.k != b.k || a.id != b.id)
			return false;
		return a.k == free || (a.size == b.size && a.align == b.align);
	}
};

struct workload {
	std::string name;
	std::vector<op> ops;
};

/* A value or a message saying what was wrong and where; value is meaningful only when ok(). */
template <class T>
struct [[nodiscard]] parse_result {
	T value{};
	std::string error;

	bool ok() const noexcept { return error.empty(); }
	explicit operator bool() const noexcept { return ok(); }
	static parse_result failure(std::string msg) { return parse_result{T{}, std::move(msg)}; }
};

/* Summary of a valid workload, computed by replaying its ops against a set of live IDs. */
struct workload_stats {
	std::size_t allocs = 0, frees = 0;
	std::size_t live_count = 0, live_bytes = 0;  /* at the end */
	std::size_t peak_count = 0, peak_bytes = 0;
	std::size_t total_bytes = 0;                 /* sum of all alloc sizes */
};

namespace detail {
/* Replays ops; returns "" or "op N: ..." for the first violation. Fills st as it goes. */
inline std::string replay(const std::vector<op> &ops, workload_stats &st)
{
	std::unordered_map<std::uint64_t, std::size_t> live;
	live.reserve(1024);
	for (std::size_t i = 0; i < ops.size(); i++) {
		const op &o = ops[i];
		const std::string at = "op " + std::to_string(i) + ": ";
		if (o.k == op::alloc) {
			if (o.size == 0)
				return at + "alloc of id " + std::to_string(o.id) + " has size 0";
			if (o.align == 0 || (o.align & (o.align - 1)) != 0)
				return at + "alloc of id " + std::to_string(o.id) + " has alignment " +
				       std::to_string(o.align) + ", not a power of two";
			if (!live.emplace(o.id, o.size).second)
				return at + "alloc of id " + std::to_string(o.id) + ", which is already live";
			st.allocs++;
			st.live_bytes += o.size;
			st.total_bytes += o.size;
		} else if (o.k == op::free) {
			auto it = live.find(o.id);
			if (it == live.end())
				return at + "free of id " + std::to_string(o.id) + ", which is not live";
			st.frees++;
			st.live_bytes -= it->second;
			live.erase(it);
		} else {
			return at + "unknown operation kind";
		}
		st.live_count = live.size();
		if (st.live_count > st.peak_count)
			st.peak_count = st.live_count;
		if (st.live_bytes > st.peak_bytes)
			st.peak_bytes = st.live_bytes;
	}
	return {};
}
}  // namespace detail

/* "" when every op is legal in sequence, else the first violation with its op index. */
inline std::string validate(const std::vector<op> &ops)
{
	workload_stats st;
	return detail::replay(ops, st);
}
inline std::string validate(const workload &w) { return validate(w.ops); }

/* Counts and live-set sizes of a workload; meaningful only if validate() returned "". */
inline workload_stats measure(const workload &w)
{
	workload_stats st;
	(void)detail::replay(w.ops, st);
	return st;
}

/* IDs live at the end of a valid sequence, in the order they were allocated. */
inline std::vector<std::uint64_t> live_ids(const std::vector<op> &ops)
{
	std::unordered_map<std::uint64_t, std::size_t> live;  /* id -> index of its alloc */
	for (std::size_t i = 0; i < ops.size(); i++) {
		if (ops[i].k == op::alloc)
			live[ops[i].id] = i;
		else
			live.erase(ops[i].id);
	}
	std::vector<std::pair<std::size_t, std::uint64_t>> order;
	order.reserve(live.size());
	for (auto [id, at] : live)
		order.emplace_back(at, id);
	std::sort(order.begin(), order.end());
	std::vector<std::uint64_t> ids;
	ids.reserve(order.size());
	for (auto [at, id] : order)
		ids.push_back(id);
	return ids;
}

}  // namespace ua::workload
