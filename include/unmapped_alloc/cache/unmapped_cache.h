// SPDX-License-Identifier: MIT
/*
 * cache/unmapped_cache.h - a cache of memory that lives outside the direct map.
 *
 * Design. A cache owns arenas (arena/arena.h) and feeds them 2 MiB chunks
 * from its chunk_source (cache/chunk_source.h), which takes them from the
 * page allocator and removes each from the direct map as a whole. Allocation
 * is the execmem pattern: try the arena, and when it has no room, populate
 * it with a chunk (a spare one if the cache keeps any, else a new one) and
 * retry. A chunk that becomes completely free is taken out of its arena and
 * kept as a spare, up to cfg.spare_chunks, so a workload oscillating at a
 * chunk boundary does not ping-pong chunks through the direct map; beyond
 * that it goes back with its large mapping intact. Requests larger than a
 * chunk take a run of whole chunks of their own, at one virtually contiguous
 * alias, physically wherever the page allocator has chunks (as vmalloc();
 * cache/chunk_run.h, cache/chunk_source.h).
 *
 * Three rooms. This header is the front end: the shards, alloc, free,
 * free_deferred, write, and the lockless lookups. The runs of chunks the
 * cache holds, with their records, spares and shrinking, are the registry's
 * (cache/chunk_registry.h), under the chunk lock; large allocations are
 * cache/large_runs.h's. Every operation on a pointer opens with the same
 * lookup, lookup_chunk(): table slot, then the chunk's record, then its tag.
 *
 * Contents never pass through a writable+executable address: text and ro
 * memory is written with write() (the backend's text_poke_copy() path); new
 * chunks and freed ranges are filled with the cache's fill byte (trap bytes
 * for text, zeroes otherwise) through the same path, before reuse.
 *
 * Shards. A cache has cfg.nr_shards arenas, each under its own lock; a
 * thread allocates from the arena of its thread number modulo nr_shards and
 * frees into whichever arena owns the chunk. A single-threaded user only ever
 * touches shard 0, so it packs as tightly as one arena.
 *
 * Locks, in the order they nest (never take an earlier one while holding a
 * later one):
 *   1. shard::lock       one per arena: that arena, its live counters, the
 *                        deferred-free set of that shard, and the chunk
 *                        table's tag of each chunk it holds (a chunk joins
 *                        or leaves a shard only under its lock);
 *   2. the chunk lock    chunk_registry::lock: the spare list, large runs,
 *                        chunk records and the chunk table's entries
 *                        (insert, erase);
 *   3. machine::lock     page allocator and backend (taken by chunk_source).
 * The shrinker registry lock (cache/shrinker.h) comes before all of them.
 * 1 and 2 are ua::mutex (ds/mutex.h): a futex lock whose uncontended lock
 * is one inlined compare-exchange and whose unlock is a plain store. Both
 * are capabilities (thread_safety.h): what each protects is declared
 * UA_GUARDED_BY it and every *_locked function UA_REQUIRES it, so clang's
 * -Wthread-safety checks the rules above at every build.
 *
 * The chunk table. Each chunk the cache holds maps to its chunk_rec, and
 * beside it (ds/chunk_table.h's tag, in the same cache line) to where it is:
 * 0 for a spare chunk or a large run, else the arena record of the chunk
 * (arena::chunk_at) with the shard's number in its low bits. free() reads
 * both with one walk and, before taking any lock, knows the shard and can
 * prefetch the arena's bitmap line. Under the shard lock it loads the tag
 * again: only that lock changes it while the chunk is in the shard, so what
 * it reads then is exact, and a stale pre-lock read (a bad free racing with
 * the chunk emptying) is refused there.
 *
 * RCU. contains() and find_allocation() take no lock: they run under an RCU
 * read guard (cache/rcu.h) and read the chunk table (atomic pointers, tables
 * never freed) and the arena's lockless lookup. Chunk records are
 * type-stable (recycled, freed only with the cache, as SLAB_TYPESAFE_BY_RCU),
 * so a reader or a racing bad free that loaded a stale record reads valid
 * memory and is refused by the checks made under the shard lock. Arena chunk
 * metadata retired when a chunk leaves an arena is reclaimed only after a
 * grace period, in batches (reclaim_retired()).
 * free_deferred() queues the free behind a grace period with call_rcu, so
 * memory that other threads may still execute or read is reused only after
 * they are done; the destructor waits for queued frees (rcu::barrier()).
 *
 * Errors (ua::error; nothing changes on any error): zero_size, too_large,
 * bad_alignment, bad_flags for bad requests; no_memory when the page
 * allocator (or ua_norefill) cannot supply a chunk; backend_failure when a
 * backend step failed and was rolled back; foreign_pointer, not_live,
 * interior_pointer for bad frees (including double frees, deferred or not).
 */
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <unordered_set>
#include <vector>

#include "../arena.h"
#include "../check.h"
#include "../ds.h"
#include "../error.h"
#include "../phys.h"
#include "../thread_safety.h"
#include "cache_config.h"
#include "chunk_registry.h"
#include "chunk_source.h"
#include "large_runs.h"
#include "rcu.h"
#include "shrinker.h"

namespace ua {

/* Per-cache figures, as printed by cache_stats_print(). */
struct cache_stats {
	std::size_t live_bytes = 0;   /* bytes in live allocations (granule-rounded; whole chunks for large) */
	std::size_t live_count = 0;   /* live allocations */
	std::size_t chunks = 0;       /* chunks held: in arenas, spare, and in large runs */
	std::size_t spare_chunks = 0; /* completely free chunks kept out of the direct map */
	std::size_t large_runs = 0;   /* allocations served from whole chunks */
	std::size_t peak_chunks = 0;  /* most chunks held at once */
	std::size_t metadata_bytes = 0;
	std::size_t deferred_pending = 0;
	chunk_source_stats source;    /* direct-map changes, flushes, runs acquired/released */
};

template <mapping_backend Backend>
class unmapped_cache {
	/* A tag (see The chunk table above): the arena record, 64-byte aligned, and the shard's number. */
	static constexpr std::uintptr_t shard_mask = 63;
	static_assert(alignof(arena_chunk) > shard_mask, "the shard's number fits below the record's alignment");
	/* Retired arena chunk records reclaimed together, one grace period for the batch. */
	static constexpr std::size_t retired_batch = 8;

	using registry_type = chunk_registry<Backend>;
	using slot_type = typename registry_type::slot_type;

	struct shard {
		const registry_type &reg;                /* names the chunk lock, for the lock order */
		mutable mutex lock UA_ACQUIRED_BEFORE(reg.lock);
		arena a UA_GUARDED_BY(lock);
		const unsigned index;
		std::size_t retired UA_GUARDED_BY(lock) = 0;                     /* chunks removed since the last reclaim */
		std::unordered_set<std::uintptr_t> deferred UA_GUARDED_BY(lock); /* queued behind a grace period */
		shard(const registry_type &r, const arena_config &c, unsigned i) : reg(r), a(c), index(i) {}

		/*
		 * The arena for what it allows without the lock: prefetch_free(),
		 * lookup_lockless() and chunk_at() (arena/arena.h), whose readers
		 * are checked again under the lock or run under RCU.
		 */
		const arena &lockless() const noexcept UA_NO_THREAD_SAFETY_ANALYSIS { return a; }
	};

	static unsigned tag_shard(std::uintptr_t tag) noexcept { return unsigned(tag & shard_mask); }
	static arena_chunk *tag_chunk(std::uintptr_t tag) noexcept { return reinterpret_cast<arena_chunk *>(tag & ~shard_mask); }

	/*
	 * What a pointer's chunk is, read without a lock: its table slot, the
	 * record the slot maps to (nullptr: not this cache's memory) and the tag
	 * (0: a large run or a spare chunk; else the shard and arena record).
	 * Each is a hint until checked under the lock that protects it.
	 */
	struct chunk_ref {
		const slot_type *slot = nullptr;
		chunk_rec *rec = nullptr;
		std::uintptr_t tag = 0;
	};

	struct deferred_free {
		rcu_head head;
		unmapped_cache *cache;
		std::uintptr_t addr;
	};

public:
	using backend_type = Backend;

	unmapped_cache(machine<Backend> &m, cache_config cfg) : cfg_(cfg), reg_(m, cfg_), large_(reg_, cfg_)
	{
		UA_CHECK(cfg_.valid(), "cache_config: invalid configuration");
		UA_CHECK(cfg_.nr_shards <= shard_mask + 1, "unmapped_cache: a shard's number must fit in a tag");
		arena_config ac{.granule = cfg_.granule};
		shards_.reserve(cfg_.nr_shards);
		for (unsigned i = 0; i < cfg_.nr_shards; i++)
			shards_.push_back(std::make_unique<shard>(reg_, ac, i));
		shrinker_.name = cfg_.name;
		shrinker_.count_objects = &shrinker_count;
		shrinker_.scan_objects = &shrinker_scan;
		shrinker_.private_data = this;
		shrinker_registry::global().register_shrinker(&shrinker_);
	}
	unmapped_cache(const unmapped_cache &) = delete;
	unmapped_cache &operator=(const unmapped_cache &) = delete;

	/* Waits for deferred frees; then the registry gives every chunk back (live allocations included). */
	~unmapped_cache()
	{
		shrinker_registry::global().unregister_shrinker(&shrinker_);
		/* A deferred free whose backend step failed queues itself again: wait for those too. */
		do
			rcu::barrier();
		while (pending_.load(std::memory_order_acquire));
	}

	const cache_config &config() const noexcept { return cfg_; }
	const char *name() const noexcept { return cfg_.name; }

	/* ---- allocation --------------------------------------------------- */

	result<void *> alloc(std::size_t size, std::size_t align = 1, ua_flags flags = 0) noexcept
	{
		if (flags & ~ua_valid_flags)
			return result<void *>::failure(error::bad_flags);
		if (size == 0)
			return result<void *>::failure(error::zero_size);
		if (!is_pow2(align) || align > chunk_size)
			return result<void *>::failure(error::bad_alignment);
		if (size > max_size())
			return result<void *>::failure(error::too_large);
		if (size > chunk_size)
			return large_.alloc(size, flags);

		/* One shard: no thread number and no division (a 64-bit div sat before the lock). */
		unsigned nr = cfg_.nr_shards;
		shard &s = *shards_[nr == 1 ? 0 : detail::thread_number() % nr];
		mutex_guard g(s.lock);
		auto r = s.a.alloc(size, align);
		if (r.err == error::no_space) {
			if (flags & ua_norefill)
				return result<void *>::failure(error::no_memory);
			if (error e = populate_locked(s); e != error::ok)
				return result<void *>::failure(e);
			r = s.a.alloc(size, align);
		}
		if (!r.ok())
			return result<void *>::failure(r.err);
		if (flags & ua_zero) {
			chunk_rec *rec = reg_.table().lookup(r.value);
			std::size_t n = align_up(size, cfg_.granule);
			if (reg_.source().fill(rec->run, r.value - rec->run.alias, 0, n) != error::ok) {
				auto f = s.a.free(r.value);
				UA_CHECK(f.ok(), "unmapped_cache: cannot undo an allocation");
				if (f.value.empty_chunk) {
					/* The chunk was added for this request: do not leave it empty in the arena. */
					detach_locked(s, f.value.empty_chunk);
					reg_.park_or_release(rec);
				}
				return result<void *>::failure(error::backend_failure);
			}
		}
		return {reinterpret_cast<void *>(r.value), error::ok};
	}

	error free(const void *p) noexcept
	{
		auto addr = reinterpret_cast<std::uintptr_t>(p);
		if (!addr)
			return error::ok;
		chunk_ref c = lookup_chunk(addr);
		if (!c.rec)
			return error::foreign_pointer;
		if (!c.tag) [[unlikely]] /* a large run, or a spare chunk where nothing is allocated */
			return is_large(c.rec->get()) ? large_.free(c.rec, addr) : error::not_live;
		shard &s = *shards_[tag_shard(c.tag)];
		/* What free_locked reads first loads while the lock is taken (the tag may be stale here). */
		s.lockless().prefetch_free(tag_chunk(c.tag), addr);
		__builtin_prefetch(&c.rec->run);
		freed f;
		{
			mutex_guard g(s.lock);
			if (!s.deferred.empty() && s.deferred.count(addr))
				return error::not_live; /* already freed with free_deferred() */
			f = free_locked(s, *c.slot, addr);
		}
		after_free(f);
		return f.err;
	}

	/* Frees p after an RCU grace period: readers and executors of p finish first. */
	error free_deferred(const void *p) noexcept
	{
		auto addr = reinterpret_cast<std::uintptr_t>(p);
		if (!addr)
			return error::ok;
		chunk_ref c = lookup_chunk(addr);
		if (!c.rec)
			return error::foreign_pointer;
		auto *d = new (std::nothrow) deferred_free{{}, this, addr};
		if (!d)
			return error::no_memory;
		error e = is_large(c.rec->get()) ? large_.defer(c.rec, addr) : c.tag ? defer_small(c, addr) : error::not_live;
		if (e != error::ok) {
			delete d;
			return e;
		}
		pending_.fetch_add(1, std::memory_order_relaxed);
		rcu::call(&d->head, &deferred_free_cb);
		return error::ok;
	}

	/* Installs len bytes at dst, inside one live allocation, without a writable alias (text_poke_copy()). */
	error write(void *dst, const void *src, std::size_t len) noexcept
	{
		if (!dst || !src)
			return error::null_pointer;
		if (len == 0)
			return error::zero_size;
		auto addr = reinterpret_cast<std::uintptr_t>(dst);
		chunk_ref c = lookup_chunk(addr);
		if (!c.rec)
			return error::foreign_pointer;
		if (!c.tag)
			return is_large(c.rec->get()) ? large_.write(*c.slot, c.rec, addr, src, len) : error::not_live;
		shard &s = *shards_[tag_shard(c.tag)];
		mutex_guard g(s.lock);
		auto l = s.a.lookup(addr);
		if (!l.ok())
			return l.err;
		if (len > l.value.addr + l.value.size - addr)
			return error::too_large; /* would run past the allocation */
		/* addr is live in s, so its chunk is in s and cannot change now: load its record again. */
		chunk_rec *rec = c.slot->value.load(std::memory_order_relaxed);
		return reg_.source().write(rec->run, addr - rec->run.alias, src, len);
	}

	/* ---- lock-free lookups (RCU) -------------------------------------- */

	/* Is p inside memory this cache holds? Never blocks. */
	bool contains(const void *p) const noexcept
	{
		rcu::read_guard rg;
		return reg_.table().lookup(reinterpret_cast<std::uintptr_t>(p)) != nullptr;
	}

	/* The live allocation containing p (its start and size). Never blocks. */
	result<allocation> find_allocation(const void *p) const noexcept
	{
		auto addr = reinterpret_cast<std::uintptr_t>(p);
		rcu::read_guard rg;
		chunk_ref c = lookup_chunk(addr);
		if (!c.rec)
			return result<allocation>::failure(error::foreign_pointer);
		if (is_large(c.rec->get()))
			return {allocation{c.rec->base.load(std::memory_order_relaxed), c.rec->bytes.load(std::memory_order_relaxed)},
				error::ok};
		if (!c.tag)
			return result<allocation>::failure(error::not_live);
		return shards_[tag_shard(c.tag)]->lockless().lookup_lockless(addr);
	}

	/* ---- chunks, shrinking, stats -------------------------------------- */

	/* Gives back up to nr spare chunks (and freed large runs whose release failed); returns how many went back. */
	std::size_t shrink(std::size_t nr = ~std::size_t{0}) noexcept
	{
		std::size_t freed = reg_.shrink(nr);
		reclaim_retired();
		return freed;
	}

	cache_stats stats() const noexcept
	{
		cache_stats st;
		for (auto &sp : shards_) {
			mutex_guard g(sp->lock);
			arena_stats as = sp->a.stats();
			st.live_bytes += as.live_bytes;
			st.live_count += as.live_count;
			st.chunks += as.chunks;
			st.metadata_bytes += as.metadata_bytes;
		}
		registry_stats rs = reg_.stats();
		st.live_bytes += rs.large_bytes;
		st.live_count += rs.large_runs;
		st.chunks += rs.large_chunks + rs.spare_chunks;
		st.large_runs = rs.large_runs;
		st.spare_chunks = rs.spare_chunks;
		st.peak_chunks = rs.peak_chunks;
		st.metadata_bytes += sizeof(*this) + rs.metadata_bytes;
		st.deferred_pending = pending_.load(std::memory_order_acquire); /* pairs with the release in complete_deferred */
		st.source = reg_.source().stats();
		return st;
	}

	/* Expensive: every arena's consistency walk plus the cache's own records. */
	std::string check_consistency() const
	{
		for (auto &sp : shards_) {
			mutex_guard g(sp->lock);
			if (std::string why = sp->a.check_consistency(); !why.empty())
				return std::string(cfg_.name) + ": " + why;
			std::string why;
			const shard &s = *sp;
			sp->a.for_each_chunk([&](std::uintptr_t base, std::size_t) {
				const slot_type *sl = reg_.table().slot(base);
				chunk_rec *rec = sl ? sl->value.load(std::memory_order_relaxed) : nullptr;
				if (why.empty() && (!rec || sl->tag.load(std::memory_order_relaxed) != make_tag(s, base)))
					why = std::string(cfg_.name) + ": a chunk's tag does not name its shard and arena record";
				if (why.empty() && rec->get() != chunk_state::in_shard)
					why = std::string(cfg_.name) + ": a chunk in an arena is not in state in_shard";
			});
			if (!why.empty())
				return why;
		}
		if (std::string why = reg_.check_consistency(); !why.empty())
			return std::string(cfg_.name) + ": " + why;
		return {};
	}

	/* Largest request served: whole-chunk runs up to 1 GiB (the page allocator's largest block). */
	static constexpr std::size_t max_size() noexcept { return pud_size; }

	chunk_source<Backend> &source() noexcept { return reg_.source(); }

private:
	/*
	 * The one lookup every operation on a pointer opens with: slot, record,
	 * tag, in that order (acquire loads: the record is published after its
	 * run is written, the tag after the arena record). No lock.
	 */
	chunk_ref lookup_chunk(std::uintptr_t addr) const noexcept
	{
		chunk_ref c;
		c.slot = reg_.table().slot(addr);
		c.rec = c.slot ? c.slot->value.load(std::memory_order_acquire) : nullptr;
		if (c.rec)
			c.tag = c.slot->tag.load(std::memory_order_acquire);
		return c;
	}

	/* Adds a chunk to shard s (its lock held): a spare if any, else a new one. */
	error populate_locked(shard &s) noexcept UA_REQUIRES(s.lock)
	{
		chunk_rec *rec = reg_.take_spare();
		if (!rec) {
			auto r = reg_.new_run(1, chunk_state::in_shard);
			if (!r.ok())
				return r.err;
			rec = r.value;
		}
		if (error e = s.a.add_chunk(rec->run.alias); e != error::ok) {
			reg_.return_spare(rec);
			return e;
		}
		reg_.table().set_tag(rec->run.alias, make_tag(s, rec->run.alias));
		return error::ok;
	}

	/* The tag of shard s's chunk at base (s's lock held, or the shard's arena otherwise unchanging). */
	std::uintptr_t make_tag(const shard &s, std::uintptr_t base) const noexcept
	{
		return reinterpret_cast<std::uintptr_t>(s.lockless().chunk_at(base)) | s.index;
	}

	/* The empty chunk at base leaves shard s (lock held): populate_locked() undone. */
	void detach_locked(shard &s, std::uintptr_t base) noexcept UA_REQUIRES(s.lock)
	{
		reg_.table().set_tag(base, 0);
		UA_CHECK(s.a.remove_chunk(base) == error::ok, "unmapped_cache: cannot remove an empty chunk");
	}

	/* Reclaims the arenas' retired chunk metadata after a grace period. No lock held. */
	void reclaim_retired() noexcept
	{
		rcu::synchronize();
		for (auto &sp : shards_) {
			mutex_guard g(sp->lock);
			sp->a.reclaim_retired();
		}
	}

	/* Validates that addr starts a live allocation of shard s (lock held). */
	static error check_start_locked(shard &s, std::uintptr_t addr) noexcept UA_REQUIRES(s.lock)
	{
		auto l = s.a.lookup(addr);
		if (!l.ok())
			return l.err;
		return l.value.addr == addr ? error::ok : error::interior_pointer;
	}

	/* free_deferred() of an arena allocation: addr joins its shard's deferred set. */
	error defer_small(const chunk_ref &c, std::uintptr_t addr) noexcept
	{
		shard &s = *shards_[tag_shard(c.tag)];
		mutex_guard g(s.lock);
		error e = check_start_locked(s, addr); /* the arena's own lookup: exact under the lock */
		if (e == error::ok && s.deferred.count(addr))
			e = error::not_live;
		if (e == error::ok) {
			try {
				s.deferred.insert(addr);
			} catch (...) {
				e = error::no_memory;
			}
		}
		return e;
	}

	/* What free_locked() did: its error, and the record of the chunk it emptied, for after_free(). */
	struct freed {
		error err = error::ok;
		chunk_rec *emptied = nullptr; /* the chunk left its shard: to park or give back */
		bool reclaim = false;         /* a batch of retired arena records is due */
	};

	/*
	 * Frees addr, in the chunk whose table slot is sl, in shard s whose lock
	 * the caller holds; fills the range first so failure changes nothing.
	 * The caller drops the lock, then calls after_free().
	 */
	freed free_locked(shard &s, const slot_type &sl, std::uintptr_t addr) noexcept UA_REQUIRES(s.lock)
	{
		/*
		 * A chunk joins and leaves a shard only under that shard's lock
		 * (populate_locked, detach_locked), so the tag names s exactly when
		 * the chunk is in s, and then it names s's record of it and the
		 * slot's record cannot change. It names another shard, or none, only
		 * for a bad free that raced with the chunk emptying.
		 */
		std::uintptr_t tag = sl.tag.load(std::memory_order_relaxed);
		if (!tag || tag_shard(tag) != s.index)
			return {error::not_live};
		chunk_rec *rec = sl.value.load(std::memory_order_relaxed);
		auto f = s.a.free_in(*tag_chunk(tag), addr, [&](std::uintptr_t a, std::size_t bytes) noexcept {
			return reg_.source().fill(rec->run, a - rec->run.alias, cfg_.fill_byte(), bytes);
		});
		if (!f.ok())
			return {f.err};
		if (!f.value.empty_chunk)
			return {};
		/* The chunk is empty: take it out of the arena; after_free() keeps it as a spare or gives it back. */
		detach_locked(s, f.value.empty_chunk);
		bool reclaim = ++s.retired >= retired_batch;
		if (reclaim)
			s.retired = 0;
		return {error::ok, rec, reclaim};
	}

	/* free_locked()'s second half, with no lock held. */
	void after_free(const freed &f) noexcept
	{
		if (f.emptied)
			reg_.park_or_release(f.emptied);
		if (f.reclaim)
			reclaim_retired();
	}

	/* call_rcu callback: the grace period is over, free for real. */
	static void deferred_free_cb(rcu_head *head)
	{
		rcu::callback_begin(head);
		auto *d = reinterpret_cast<deferred_free *>(head);
		if (!d->cache->complete_deferred(d->addr)) {
			rcu::call(&d->head, &deferred_free_cb); /* the fill failed: try again after another grace period */
			return;
		}
		delete d;
	}

	/* False when the free's backend step failed and nothing changed: the caller retries later. */
	bool complete_deferred(std::uintptr_t addr) noexcept
	{
		chunk_ref c = lookup_chunk(addr);
		UA_CHECK(c.rec, "unmapped_cache: deferred free of a vanished chunk");
		if (is_large(c.rec->get())) {
			large_.complete_deferred(c.rec);
		} else {
			/* The queued allocation is still live, so its chunk stays in its shard: the tag is set. */
			shard &s = *shards_[tag_shard(c.tag)];
			freed f;
			{
				mutex_guard g(s.lock);
				auto node = s.deferred.extract(addr);
				f = free_locked(s, *c.slot, addr);
				if (f.err != error::ok) {
					/* Nothing changed and the lock is still held: queue it again, without allocating. */
					UA_CHECK(f.err == error::backend_failure, "unmapped_cache: deferred free failed");
					s.deferred.insert(std::move(node));
					return false;
				}
			}
			after_free(f);
		}
		pending_.fetch_sub(1, std::memory_order_release);
		return true;
	}

	static std::size_t shrinker_count(shrinker *sh, shrink_control *)
	{
		return static_cast<unmapped_cache *>(sh->private_data)->reg_.reclaimable();
	}
	static std::size_t shrinker_scan(shrinker *sh, shrink_control *sc)
	{
		auto *c = static_cast<unmapped_cache *>(sh->private_data);
		std::size_t freed = c->shrink(sc->nr_to_scan);
		sc->nr_scanned = freed;
		return freed;
	}

	cache_config cfg_;
	registry_type reg_;                          /* runs, records, spares: the chunk lock */
	large_runs<Backend> large_;
	std::vector<std::unique_ptr<shard>> shards_;
	std::atomic<std::size_t> pending_{0};
	shrinker shrinker_;
};

}  // namespace ua
