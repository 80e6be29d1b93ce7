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
 * Optional fields, all zero (unset) by default so that every older workload
 * means what it meant (docs/workloads.md, "The operation model"):
 *  - mem (alloc): the memory kind, which cache or peer should serve the
 *    allocation when one workload mixes kinds (text, ro, secret, guest);
 *    unspecified leaves the choice to the replay, as before;
 *  - t_ns (both): a time stamp in nanoseconds since the workload began, so a
 *    report can plot the direct map against time; non-decreasing;
 *  - folio (alloc): the allocation is SIZE / folio separate folios of `folio`
 *    bytes each, taken and removed from the direct map one by one but freed
 *    together (guest_memfd memory); 0: one allocation;
 *  - footprint (alloc): the allocation stands for an instance that is a whole
 *    process (a sockex1 run, a VM), which holds that many bytes of ordinary
 *    memory for as long as the allocation is live.
 *
 * Rules, checked by validate():
 *  - an alloc's ID must not be live (IDs may be reused once freed; the
 *    generators never reuse them, so a replay can index by ID directly);
 *  - a free must name a live ID;
 *  - size > 0, alignment a power of two;
 *  - folio 0 or a power of two dividing size; memory kind a known one;
 *  - time stamps never go backwards; a free carries no alloc-only field.
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
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ua::workload {

/*
 * What an allocation's memory is, so that a workload mixing several kinds can
 * be routed op by op to the cache or peer that serves each (the replay
 * decides; nothing here depends on it):
 *   bpf_text     JIT images (bpf_jit_binary_pack_alloc(): any size, 64 B granule)
 *   module_text  module text and init regions (execmem, page multiples)
 *   ro           read-only data whose direct-map alias goes read-only
 *                (module rodata and ro_after_init: set_memory_ro())
 *   data         ordinary writable memory that stays in the direct map
 *                (module data): it takes frames, changes no mapping
 *   secret       memfd_secret() pages, removed from the direct map
 *   guest        guest memory of a VM whose guest_memfd has no direct map
 *                (GUEST_MEMFD_FLAG_NO_DIRECT_MAP), removed per folio
 * `unspecified` (0) is the default: the replay's choice for the workload.
 */
enum class memory_kind : std::uint8_t { unspecified, bpf_text, module_text, ro, data, secret, guest };

inline constexpr std::size_t nr_memory_kinds = 7;
inline constexpr std::string_view memory_kind_names[nr_memory_kinds] = {
	"unspecified", "bpf_text", "module_text", "ro", "data", "secret", "guest",
};

constexpr std::string_view name_of(memory_kind k) noexcept
{
	return std::size_t(k) < nr_memory_kinds ? memory_kind_names[std::size_t(k)] : std::string_view("invalid");
}

/* The kind named s ("secret"), or false. */
constexpr bool parse_memory_kind(std::string_view s, memory_kind &out) noexcept
{
	for (std::size_t i = 0; i < nr_memory_kinds; i++)
		if (memory_kind_names[i] == s) {
			out = memory_kind(i);
			return true;
		}
	return false;
}

inline constexpr std::uint64_t ns_per_s = 1000000000ull;

struct op {
	enum kind : std::uint8_t { alloc, free };

	kind k = alloc;
	std::uint64_t id = 0;
	std::size_t size = 0;   /* alloc only: bytes requested */
	std::size_t align = 1;  /* alloc only: power of two */
	std::string tag;        /* optional label for reports ("ext4.text"); not part of equality */
	memory_kind mem = memory_kind::unspecified; /* alloc only */
	std::uint64_t t_ns = 0;     /* time stamp, ns since the workload began; 0 = none */
	std::size_t folio = 0;      /* alloc only: 0, or SIZE is SIZE / folio folios of this size */
	std::size_t footprint = 0;  /* alloc only: bytes of ordinary memory its process holds meanwhile */

	static op make_alloc(std::uint64_t id, std::size_t size, std::size_t align = 1, std::string tag = {})
	{
		return op{alloc, id, size, align, std::move(tag)};
	}
	static op make_free(std::uint64_t id) { return op{free, id, 0, 1, {}}; }

	/* Setters for the optional fields, chainable on a fresh op: make_alloc(...).of(k).at(t). */
	op &of(memory_kind m) noexcept { mem = m; return *this; }
	op &at(std::uint64_t t) noexcept { t_ns = t; return *this; }
	op &in_folios(std::size_t f) noexcept { folio = f; return *this; }
	op &with_footprint(std::size_t bytes) noexcept { footprint = bytes; return *this; }

	/* Two ops are equal when they do the same thing; tags are labels only. */
	friend bool operator==(const op &a, const op &b) noexcept
	{
		if (a.k != b.k || a.id != b.id || a.t_ns != b.t_ns)
			return false;
		return a.k == free || (a.size == b.size && a.align == b.align && a.mem == b.mem &&
				       a.folio == b.folio && a.footprint == b.footprint);
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
	/* Per memory kind (index: memory_kind): bytes live at the end, and the most live at once. */
	std::size_t live_bytes_by_kind[nr_memory_kinds] = {};
	std::size_t peak_bytes_by_kind[nr_memory_kinds] = {};
	std::size_t live_footprint = 0, peak_footprint = 0; /* sum of live allocations' footprints */
	std::uint64_t end_ns = 0;                    /* the last op's time stamp */
};

/*
 * The rules above, applied one op at a time, so that a stream of millions
 * of ops is checked in memory proportional to its live set. check() returns
 * "" or what is wrong with this op (without position: the caller adds
 * "op N: " or "FILE:LINE: "); a rejected op changes nothing.
 */
class op_checker {
public:
	op_checker() { live_.reserve(1024); }

	std::string check(const op &o)
	{
		if (o.t_ns < st_.end_ns)
			return "time " + std::to_string(o.t_ns) + " ns is before the previous op's " +
			       std::to_string(st_.end_ns) + " ns";
		if (o.k == op::alloc) {
			const std::string what = "alloc of id " + std::to_string(o.id);
			if (o.size == 0)
				return what + " has size 0";
			if (o.align == 0 || (o.align & (o.align - 1)) != 0)
				return what + " has alignment " + std::to_string(o.align) + ", not a power of two";
			if (std::size_t(o.mem) >= nr_memory_kinds)
				return what + " has an unknown memory kind " + std::to_string(unsigned(o.mem));
			if (o.folio != 0 && ((o.folio & (o.folio - 1)) != 0 || o.size % o.folio != 0))
				return what + " has folio " + std::to_string(o.folio) +
				       ", not a power of two dividing its size " + std::to_string(o.size);
			if (!live_.emplace(o.id, entry{o.size, o.footprint, o.mem}).second)
				return what + ", which is already live";
			st_.allocs++;
			st_.live_bytes += o.size;
			st_.total_bytes += o.size;
			st_.live_footprint += o.footprint;
			std::size_t &kb = st_.live_bytes_by_kind[std::size_t(o.mem)];
			kb += o.size;
			if (kb > st_.peak_bytes_by_kind[std::size_t(o.mem)])
				st_.peak_bytes_by_kind[std::size_t(o.mem)] = kb;
		} else if (o.k == op::free) {
			if (o.mem != memory_kind::unspecified || o.folio != 0 || o.footprint != 0)
				return "free of id " + std::to_string(o.id) + " carries an alloc-only field";
			auto it = live_.find(o.id);
			if (it == live_.end())
				return "free of id " + std::to_string(o.id) + ", which is not live";
			st_.frees++;
			st_.live_bytes -= it->second.size;
			st_.live_footprint -= it->second.footprint;
			st_.live_bytes_by_kind[std::size_t(it->second.mem)] -= it->second.size;
			live_.erase(it);
		} else {
			return "unknown operation kind";
		}
		st_.end_ns = o.t_ns;
		st_.live_count = live_.size();
		st_.peak_count = std::max(st_.peak_count, st_.live_count);
		st_.peak_bytes = std::max(st_.peak_bytes, st_.live_bytes);
		st_.peak_footprint = std::max(st_.peak_footprint, st_.live_footprint);
		return {};
	}

	const workload_stats &stats() const noexcept { return st_; }
	bool is_live(std::uint64_t id) const { return live_.count(id) != 0; }

private:
	struct entry {
		std::size_t size, footprint;
		memory_kind mem;
	};
	std::unordered_map<std::uint64_t, entry> live_;
	workload_stats st_;
};

namespace detail {
/* Replays ops; returns "" or "op N: ..." for the first violation. Fills st as it goes. */
inline std::string replay(const std::vector<op> &ops, workload_stats &st)
{
	op_checker c;
	for (std::size_t i = 0; i < ops.size(); i++) {
		std::string why = c.check(ops[i]);
		if (!why.empty()) {
			st = c.stats();
			return "op " + std::to_string(i) + ": " + why;
		}
	}
	st = c.stats();
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
