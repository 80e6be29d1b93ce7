// SPDX-License-Identifier: MIT
/*
 * tests/support/fault_backend.h - fault injection: a backend that fails on purpose.
 *
 * Test support, not part of the installed library: the tests and the fuzzer
 * include it as <support/fault_backend.h> (tests/ is on their include path).
 *
 * fault_backend<B> wraps any mapping backend and passes every operation to
 * it, except the one its fault_injector picks: that one returns an error
 * without calling B, as the contract allows any operation to fail (backend.h:
 * all-or-nothing, so "failed without calling B" is a legal failure). The
 * injector counts operations and fails exactly the nth one after arm(), once,
 * like the kernel's fault-injection framework with fail_nth
 * (Documentation/fault-injection/fault-injection.rst, /proc/self/fail-nth):
 * a test runs a scenario once to count its operations, then once for every
 * n, and checks after each failure that the caller reported it, undid its
 * earlier steps and still works.
 *
 * The page allocator is not behind the backend, so it has its own hook
 * (page_allocator::set_fault_hook(), the analogue of should_fail_alloc_page()
 * of mm/fail_page_alloc.c); page_alloc_hook() below connects it to the same
 * injector, so "the nth operation" counts page allocations too:
 *
 *   ua::machine<ua::fault_backend<ua::sim_direct_map>> m(nr_pages);
 *   m.pages.set_fault_hook(&decltype(m.backend)::page_alloc_hook, &m.backend.injector());
 *   m.backend.injector().arm(n);    // fail the nth operation from now
 *
 * Queries (direct_map_state, stats, nr_pages) are never failed or counted.
 *
 * Three modes, as the kernel's fault attributes (interval, times,
 * probability in Documentation/fault-injection/fault-injection.rst):
 *   arm(n)              the nth operation fails, once;
 *   arm_window(n, m)    every operation from the nth fails, m of them: a
 *                       fault that lasts, which reaches the undo steps of the
 *                       failed call when the window covers them, and every
 *                       retry inside it;
 *   arm_random(p, seed) each operation fails with probability p, from a
 *                       seeded generator (the same seed, the same run when a
 *                       single thread operates).
 * Each takes a mask of the kinds of operation counted and failed.
 */
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include <unmapped_alloc/phys.h>
#include <unmapped_alloc/sim.h>

namespace ua {

/* What an operation does, for the injector's mask and its report. */
enum class fault_op : unsigned {
	dm_change,      /* set_direct_map_invalid/default/ro */
	flush,          /* flush_tlb */
	collapse,       /* collapse */
	alias_map,      /* map_alias, map_alias_runs */
	alias_protect,  /* protect_alias, set_memory */
	alias_unmap,    /* unmap_alias */
	alias_secure,   /* secure_alias */
	write,          /* write_frames */
	fill,           /* fill_frames */
	release_frames, /* release_frames */
	page_alloc,     /* page_allocator::alloc_pages, through page_alloc_hook */
	nr_ops,
};

constexpr unsigned fault_bit(fault_op op) noexcept { return 1u << unsigned(op); }
inline constexpr unsigned fault_all_ops = (1u << unsigned(fault_op::nr_ops)) - 1;

constexpr const char *fault_op_name(fault_op op) noexcept
{
	constexpr const char *names[] = {"dm_change",   "flush",        "collapse", "alias_map",
					 "alias_protect", "alias_unmap", "alias_secure", "write",
					 "fill",        "release_frames", "page_alloc"};
	return unsigned(op) < unsigned(fault_op::nr_ops) ? names[unsigned(op)] : "?";
}

/*
 * Counts operations and fails the ones its mode picks. Counting is atomic
 * because write_frames() and fill_frames() may run outside the machine lock
 * (backend.h); arming and disarming are for a quiet machine.
 */
class fault_injector {
public:
	/* Fail the nth (1-based) operation of a kind in mask from now on, with err; n == 0 counts only. */
	void arm(std::uint64_t n, unsigned mask = fault_all_ops, int err = -ENOMEM) noexcept { arm_window(n, n ? 1 : 0, mask, err); }
	/* Fail the m operations of a kind in mask from the nth (1-based) on: n, n+1, ..., n+m-1. */
	void arm_window(std::uint64_t n, std::uint64_t m, unsigned mask = fault_all_ops, int err = -ENOMEM) noexcept
	{
		reset(mask, err);
		last_.store(n && m ? n + m - 1 : 0, std::memory_order_relaxed);
		first_.store(n, std::memory_order_relaxed);
	}
	/* Fail each operation of a kind in mask with probability p (0..1), drawn from seed. */
	void arm_random(double p, std::uint64_t seed, unsigned mask = fault_all_ops, int err = -ENOMEM) noexcept
	{
		reset(mask, err);
		rng_.store(seed);
		threshold_.store(p >= 1.0 ? ~std::uint64_t{0} : p <= 0.0 ? 0 : std::uint64_t(p * 18446744073709551616.0),
				 std::memory_order_relaxed);
	}
	/* Stop failing; keep counting. */
	void disarm() noexcept
	{
		first_.store(0, std::memory_order_relaxed);
		threshold_.store(0, std::memory_order_relaxed);
	}

	/* Called before every operation: true when this one must fail. */
	bool should_fail(fault_op op) noexcept
	{
		if (!(mask_ & fault_bit(op)))
			return false;
		std::uint64_t i = count_.fetch_add(1) + 1;
		std::uint64_t first = first_.load(std::memory_order_relaxed), t = threshold_.load(std::memory_order_relaxed);
		bool fail = (first && i >= first && i <= last_.load(std::memory_order_relaxed)) || (t && next_random() < t);
		if (!fail)
			return false;
		nr_failed_.fetch_add(1);
		failed_.store(unsigned(op));
		by_kind_[unsigned(op)].fetch_add(1);
		return true;
	}

	std::uint64_t count() const noexcept { return count_.load(); } /* operations of the mask since arming */
	bool fired() const noexcept { return nr_failed_.load() != 0; }
	std::uint64_t nr_failed() const noexcept { return nr_failed_.load(); }
	std::uint64_t nr_failed(fault_op op) const noexcept { return by_kind_[unsigned(op)].load(); }
	fault_op failed_op() const noexcept { return fault_op(failed_.load()); } /* the last one failed */
	int err() const noexcept { return err_; }

private:
	void reset(unsigned mask, int err) noexcept
	{
		disarm();
		count_.store(0);
		nr_failed_.store(0);
		for (auto &k : by_kind_)
			k.store(0);
		mask_ = mask;
		err_ = err;
		failed_.store(unsigned(fault_op::nr_ops));
	}
	/* splitmix64 over an atomic state: any thread may draw. */
	std::uint64_t next_random() noexcept
	{
		std::uint64_t z = rng_.fetch_add(0x9e3779b97f4a7c15ull) + 0x9e3779b97f4a7c15ull;
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		return z ^ (z >> 31);
	}

	std::atomic<std::uint64_t> count_{0};
	/* Atomic so that arming and disarming may race with a callback thread's operations. */
	std::atomic<std::uint64_t> first_{0}, last_{0}; /* window [first_, last_] of counted operations; 0: none */
	std::atomic<std::uint64_t> threshold_{0};       /* random mode: fail when a draw is below it; 0: off */
	std::atomic<std::uint64_t> rng_{0};
	unsigned mask_ = fault_all_ops;
	int err_ = -ENOMEM;
	std::atomic<std::uint64_t> nr_failed_{0};
	std::atomic<std::uint64_t> by_kind_[unsigned(fault_op::nr_ops)] = {};
	std::atomic<unsigned> failed_{unsigned(fault_op::nr_ops)};
};

template <mapping_backend B>
class fault_backend {
public:
	static constexpr bool dereferenceable = B::dereferenceable;
	static constexpr const char *name = B::name;
	using inner_type = B;

	/* The wrapped backend is built in place with the same arguments. */
	template <class... Args>
	explicit fault_backend(std::uint64_t nr_pages, Args &&...args) : inner_(nr_pages, std::forward<Args>(args)...)
	{
	}

	B &inner() noexcept { return inner_; }
	const B &inner() const noexcept { return inner_; }
	fault_injector &injector() noexcept { return inj_; }

	/* For page_allocator::set_fault_hook(): ctx is this backend's injector. */
	static bool page_alloc_hook(void *ctx, unsigned /*order*/) noexcept
	{
		return static_cast<fault_injector *>(ctx)->should_fail(fault_op::page_alloc);
	}

	std::uint64_t nr_pages() const noexcept { return inner_.nr_pages(); }
	backend_stats stats() const { return inner_.stats(); }

	int set_direct_map_invalid(frame_range r) noexcept { return fail(fault_op::dm_change) ? inj_.err() : inner_.set_direct_map_invalid(r); }
	int set_direct_map_default(frame_range r) noexcept { return fail(fault_op::dm_change) ? inj_.err() : inner_.set_direct_map_default(r); }
	int set_direct_map_ro(frame_range r) noexcept { return fail(fault_op::dm_change) ? inj_.err() : inner_.set_direct_map_ro(r); }
	int flush_tlb(frame_range r) noexcept { return fail(fault_op::flush) ? inj_.err() : inner_.flush_tlb(r); }
	int collapse(frame_range r) noexcept { return fail(fault_op::collapse) ? inj_.err() : inner_.collapse(r); }
	dm_state direct_map_state(pfn_t pfn) const noexcept { return inner_.direct_map_state(pfn); }

	int map_alias(frame_range r, prot p, std::uintptr_t *a, map_flags f = map_flags::none) noexcept
	{
		return fail(fault_op::alias_map) ? inj_.err() : inner_.map_alias(r, p, a, f);
	}
	int map_alias_runs(const frame_range *runs, std::size_t n, prot p, std::uintptr_t *a,
			   map_flags f = map_flags::none) noexcept
	{
		return fail(fault_op::alias_map) ? inj_.err() : inner_.map_alias_runs(runs, n, p, a, f);
	}
	int set_memory(std::uintptr_t a, std::size_t n, cpa_op op) noexcept
	{
		return fail(fault_op::alias_protect) ? inj_.err() : inner_.set_memory(a, n, op);
	}
	int protect_alias(std::uintptr_t a, std::size_t n, prot p) noexcept
	{
		return fail(fault_op::alias_protect) ? inj_.err() : inner_.protect_alias(a, n, p);
	}
	int unmap_alias(std::uintptr_t a, std::size_t n) noexcept { return fail(fault_op::alias_unmap) ? inj_.err() : inner_.unmap_alias(a, n); }
	int secure_alias(std::uintptr_t a, std::size_t n) noexcept { return fail(fault_op::alias_secure) ? inj_.err() : inner_.secure_alias(a, n); }

	int write_frames(pfn_t pfn, std::size_t off, const void *src, std::size_t n) noexcept
	{
		return fail(fault_op::write) ? inj_.err() : inner_.write_frames(pfn, off, src, n);
	}
	int fill_frames(pfn_t pfn, std::size_t off, int byte, std::size_t n) noexcept
	{
		return fail(fault_op::fill) ? inj_.err() : inner_.fill_frames(pfn, off, byte, n);
	}
	int release_frames(frame_range r) noexcept { return fail(fault_op::release_frames) ? inj_.err() : inner_.release_frames(r); }

	/* The alias queries both backends offer, passed through for tests. */
	std::optional<frame_range> alias_frames(std::uintptr_t a) const noexcept { return inner_.alias_frames(a); }
	std::optional<pfn_t> alias_pfn(std::uintptr_t a) const noexcept { return inner_.alias_pfn(a); }
	std::optional<prot> alias_prot(std::uintptr_t a) const noexcept { return inner_.alias_prot(a); }
	bool alias_secured(std::uintptr_t a) const noexcept { return inner_.alias_secured(a); }

private:
	/* True when this operation is the one to fail (with inj_.err()). */
	bool fail(fault_op op) noexcept { return inj_.should_fail(op); }

	B inner_;
	fault_injector inj_;
};

}  // namespace ua
