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
 * chunk take a run of whole contiguous chunks of their own.
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
 *   2. chunk_lock_       the spare list, large runs, chunk records and the
 *                        chunk table's entries (insert, erase);
 *   3. machine::lock     page allocator and backend (taken by chunk_source).
 * The shrinker registry lock (cache/shrinker.h) comes before all of them.
 * 1 and 2 are ua::mutex (ds/mutex.h): a futex lock whose uncontended lock
 * is one inlined compare-exchange and whose unlock is a plain store.
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
#include <mutex>
#include <new>
#include <string>
#include <unordered_set>
#include <vector>

#include "../arena.h"
#include "../check.h"
#include "../ds.h"
#include "../error.h"
#include "../phys.h"
#include "cache_config.h"
#include "chunk_source.h"
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

	/* One per run of chunks the cache holds; every chunk of the run maps to it. */
	struct chunk_rec {
		chunk_run run;                         /* written under chunk_lock_ before publication */
		std::atomic<bool> large{false};        /* a run serving one large allocation */
		std::atomic<std::uintptr_t> base{0};   /* run.alias, for lockless readers */
		std::atomic<std::size_t> bytes{0};     /* run.bytes(), for lockless readers */
		bool in_use = false;                   /* chunk_lock_: held (false while on free_recs_) */
	};

	struct shard {
		mutex lock;
		arena a;
		unsigned index;
		std::size_t retired = 0;                     /* chunks removed since the last reclaim */
		std::unordered_set<std::uintptr_t> deferred; /* queued behind a grace period */
		shard(const arena_config &c, unsigned i) : a(c), index(i) {}
	};

	using table_type = chunk_table<chunk_rec, true>;
	using slot_type = typename table_type::slot_type;

	static unsigned tag_shard(std::uintptr_t tag) noexcept { return unsigned(tag & shard_mask); }
	static arena_chunk *tag_chunk(std::uintptr_t tag) noexcept { return reinterpret_cast<arena_chunk *>(tag & ~shard_mask); }

	struct deferred_free {
		rcu_head head;
		unmapped_cache *cache;
		std::uintptr_t addr;
	};

public:
	using backend_type = Backend;

	unmapped_cache(machine<Backend> &m, cache_config cfg) : cfg_(cfg), src_(m, cfg_)
	{
		UA_CHECK(cfg_.valid(), "cache_config: invalid configuration");
		UA_CHECK(cfg_.nr_shards <= shard_mask + 1, "unmapped_cache: a shard's number must fit in a tag");
		arena_config ac{.granule = cfg_.granule};
		shards_.reserve(cfg_.nr_shards);
		for (unsigned i = 0; i < cfg_.nr_shards; i++)
			shards_.push_back(std::make_unique<shard>(ac, i));
		shrinker_.name = cfg_.name;
		shrinker_.count_objects = &shrinker_count;
		shrinker_.scan_objects = &shrinker_scan;
		shrinker_.private_data = this;
		shrinker_registry::global().register_shrinker(&shrinker_);
	}
	unmapped_cache(const unmapped_cache &) = delete;
	unmapped_cache &operator=(const unmapped_cache &) = delete;

	/* Waits for deferred frees, then gives every chunk back (live allocations included). */
	~unmapped_cache()
	{
		shrinker_registry::global().unregister_shrinker(&shrinker_);
		/* A deferred free whose backend step failed queues itself again: wait for those too. */
		do
			rcu::barrier();
		while (pending_.load(std::memory_order_acquire));
		std::lock_guard<mutex> g(chunk_lock_);
		for (chunk_rec *rec : recs_) {
			for (std::size_t i = 0; i < rec->run.nr_chunks; i++)
				table_.erase(rec->run.alias + i * chunk_size);
			UA_CHECK(src_.release(rec->run) == error::ok, "unmapped_cache: cannot give a chunk back at teardown");
			delete rec;
		}
		for (chunk_rec *rec : free_recs_)
			delete rec;
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
			return alloc_large(size, flags);

		/* One shard: no thread number and no division (a 64-bit div sat before the lock). */
		unsigned nr = cfg_.nr_shards;
		shard &s = *shards_[nr == 1 ? 0 : detail::thread_number() % nr];
		std::lock_guard<mutex> g(s.lock);
		auto r = s.a.alloc(size, align);
		if (r.err == error::no_space) {
			if (flags & ua_norefill)
				return result<void *>::failure(error::no_memory);
			if (error e = populate(s); e != error::ok)
				return result<void *>::failure(e);
			r = s.a.alloc(size, align);
		}
		if (!r.ok())
			return result<void *>::failure(r.err);
		if (flags & ua_zero) {
			chunk_rec *rec = table_.lookup(r.value);
			std::size_t n = align_up(size, cfg_.granule);
			if (src_.fill(rec->run, r.value - rec->run.alias, 0, n) != error::ok) {
				auto f = s.a.free(r.value);
				UA_CHECK(f.ok(), "unmapped_cache: cannot undo an allocation");
				if (f.value.empty_chunk) {
					/* The chunk was added for this request: do not leave it empty in the arena. */
					detach_locked(s, f.value.empty_chunk);
					park_or_release(rec);
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
		const slot_type *sl = table_.slot(addr);
		chunk_rec *rec = sl ? sl->value.load(std::memory_order_acquire) : nullptr;
		if (!rec)
			return error::foreign_pointer;
		std::uintptr_t tag = sl->tag.load(std::memory_order_acquire);
		if (!tag) [[unlikely]] /* a large run, or a spare chunk where nothing is allocated */
			return rec->large.load(std::memory_order_acquire) ? free_large(rec, addr) : error::not_live;
		shard &s = *shards_[tag_shard(tag)];
		/* What free_locked reads first loads while the lock is taken (the tag may be stale here). */
		s.a.prefetch_free(tag_chunk(tag), addr);
		__builtin_prefetch(&rec->run);
		std::unique_lock<mutex> g(s.lock);
		if (!s.deferred.empty() && s.deferred.count(addr))
			return error::not_live; /* already freed with free_deferred() */
		return free_locked(s, g, *sl, addr);
	}

	/* Frees p after an RCU grace period: readers and executors of p finish first. */
	error free_deferred(const void *p) noexcept
	{
		auto addr = reinterpret_cast<std::uintptr_t>(p);
		if (!addr)
			return error::ok;
		const slot_type *sl = table_.slot(addr);
		chunk_rec *rec = sl ? sl->value.load(std::memory_order_acquire) : nullptr;
		if (!rec)
			return error::foreign_pointer;
		auto *d = new (std::nothrow) deferred_free{{}, this, addr};
		if (!d)
			return error::no_memory;
		if (rec->large.load(std::memory_order_acquire)) {
			std::lock_guard<mutex> g(chunk_lock_);
			if (!rec->in_use || !rec->large || addr != rec->run.alias) {
				delete d;
				return rec->in_use ? error::interior_pointer : error::not_live;
			}
			bool inserted = false;
			UA_TRY {
				inserted = large_deferred_.insert(addr).second;
			} UA_CATCH_ALL {
				delete d;
				return error::no_memory;
			}
			if (!inserted) {
				delete d;
				return error::not_live;
			}
		} else {
			std::uintptr_t tag = sl->tag.load(std::memory_order_acquire);
			if (!tag) {
				delete d;
				return error::not_live;
			}
			shard &s = *shards_[tag_shard(tag)];
			std::lock_guard<mutex> g(s.lock);
			error e = check_start_locked(s, addr); /* the arena's own lookup: exact under the lock */
			if (e == error::ok && s.deferred.count(addr))
				e = error::not_live;
			if (e == error::ok) {
				UA_TRY {
					s.deferred.insert(addr);
				} UA_CATCH_ALL {
					e = error::no_memory;
				}
			}
			if (e != error::ok) {
				delete d;
				return e;
			}
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
		const slot_type *sl = table_.slot(addr);
		chunk_rec *rec = sl ? sl->value.load(std::memory_order_acquire) : nullptr;
		if (!rec)
			return error::foreign_pointer;
		std::uintptr_t tag = sl->tag.load(std::memory_order_acquire);
		if (!tag) {
			if (!rec->large.load(std::memory_order_acquire))
				return error::not_live;
			std::lock_guard<mutex> g(chunk_lock_);
			if (!rec->in_use || !rec->large || sl->value.load(std::memory_order_relaxed) != rec)
				return error::not_live;
			if (addr + len > rec->run.alias + rec->run.bytes() || addr + len < addr)
				return error::too_large;
			return src_.write(rec->run, addr - rec->run.alias, src, len);
		}
		shard &s = *shards_[tag_shard(tag)];
		std::lock_guard<mutex> g(s.lock);
		auto l = s.a.lookup(addr);
		if (!l.ok())
			return l.err;
		if (len > l.value.addr + l.value.size - addr)
			return error::too_large; /* would run past the allocation */
		/* addr is live in s, so its chunk is in s and cannot change now: load its record again. */
		rec = sl->value.load(std::memory_order_relaxed);
		return src_.write(rec->run, addr - rec->run.alias, src, len);
	}

	/* ---- lock-free lookups (RCU) -------------------------------------- */

	/* Is p inside memory this cache holds? Never blocks. */
	bool contains(const void *p) const noexcept
	{
		rcu::read_guard rg;
		return table_.lookup(reinterpret_cast<std::uintptr_t>(p)) != nullptr;
	}

	/* The live allocation containing p (its start and size). Never blocks. */
	result<allocation> find_allocation(const void *p) const noexcept
	{
		auto addr = reinterpret_cast<std::uintptr_t>(p);
		rcu::read_guard rg;
		const slot_type *sl = table_.slot(addr);
		chunk_rec *rec = sl ? sl->value.load(std::memory_order_acquire) : nullptr;
		if (!rec)
			return result<allocation>::failure(error::foreign_pointer);
		if (rec->large.load(std::memory_order_acquire))
			return {allocation{rec->base.load(std::memory_order_relaxed), rec->bytes.load(std::memory_order_relaxed)},
				error::ok};
		std::uintptr_t tag = sl->tag.load(std::memory_order_acquire);
		if (!tag)
			return result<allocation>::failure(error::not_live);
		return shards_[tag_shard(tag)]->a.lookup_lockless(addr);
	}

	/* ---- chunks, shrinking, stats -------------------------------------- */

	/* Gives back up to nr spare chunks; returns how many went back. */
	std::size_t shrink(std::size_t nr = ~std::size_t{0}) noexcept
	{
		std::size_t freed = 0;
		{
			std::lock_guard<mutex> g(chunk_lock_);
			while (nr && !unreleased_.empty()) {
				chunk_rec *rec = unreleased_.back();
				unreleased_.pop_back();
				nr--;
				if (release_rec_locked(rec) != error::ok) {
					/* Room: it was just taken out. The backend is failing: retrying at once would spin. */
					unreleased_.push_back(rec);
					break;
				}
				freed++;
			}
			/* In place, allocating nothing (this is noexcept): a spare that cannot go back stays, and ends the pass. */
			while (nr-- && !spares_.empty()) {
				chunk_rec *rec = spares_.back();
				spares_.pop_back();
				if (release_rec_locked(rec) != error::ok) {
					spares_.push_back(rec); /* still held and usable: keep it as a spare */
					break;
				}
				freed++;
			}
		}
		reclaim_retired();
		return freed;
	}

	cache_stats stats() const noexcept
	{
		cache_stats st;
		for (auto &sp : shards_) {
			std::lock_guard<mutex> g(sp->lock);
			arena_stats as = sp->a.stats();
			st.live_bytes += as.live_bytes;
			st.live_count += as.live_count;
			st.chunks += as.chunks;
			st.metadata_bytes += as.metadata_bytes;
		}
		std::lock_guard<mutex> g(chunk_lock_);
		for (chunk_rec *rec : recs_) {
			if (rec->large.load(std::memory_order_relaxed)) {
				st.live_bytes += rec->run.bytes();
				st.live_count++;
				st.chunks += rec->run.nr_chunks;
				st.large_runs++;
			}
		}
		st.spare_chunks = spares_.size();
		for (chunk_rec *rec : unreleased_)
			st.spare_chunks += rec->run.nr_chunks;
		st.chunks += st.spare_chunks;
		st.peak_chunks = peak_chunks_;
		st.metadata_bytes += sizeof(*this) + table_.memory_bytes() +
				     (recs_.capacity() + free_recs_.capacity()) * sizeof(void *) +
				     (recs_.size() + free_recs_.size()) * sizeof(chunk_rec);
		st.deferred_pending = pending_.load(std::memory_order_acquire); /* pairs with the release in complete_deferred */
		st.source = src_.stats();
		return st;
	}

	/* Expensive: every arena's consistency walk plus the cache's own records. */
	std::string check_consistency() const
	{
		for (auto &sp : shards_) {
			std::lock_guard<mutex> g(sp->lock);
			if (std::string why = sp->a.check_consistency(); !why.empty())
				return std::string(cfg_.name) + ": " + why;
			std::string why;
			sp->a.for_each_chunk([&](std::uintptr_t base, std::size_t) {
				const slot_type *sl = table_.slot(base);
				if (why.empty() && (!sl || sl->tag.load(std::memory_order_relaxed) != make_tag(*sp, base)))
					why = std::string(cfg_.name) + ": a chunk's tag does not name its shard and arena record";
			});
			if (!why.empty())
				return why;
		}
		std::lock_guard<mutex> g(chunk_lock_);
		for (chunk_rec *rec : recs_)
			for (std::size_t i = 0; i < rec->run.nr_chunks; i++)
				if (table_.lookup(rec->run.alias + i * chunk_size) != rec)
					return std::string(cfg_.name) + ": chunk record missing from the chunk table";
		return {};
	}

	/* Largest request served: whole-chunk runs up to 1 GiB (the page allocator's largest block). */
	static constexpr std::size_t max_size() noexcept { return pud_size; }

	chunk_source<Backend> &source() noexcept { return src_; }

private:
	/* Adds a chunk to shard s (lock held): a spare if any, else a new one. */
	error populate(shard &s) noexcept
	{
		chunk_rec *rec = nullptr;
		{
			std::lock_guard<mutex> g(chunk_lock_);
			if (!spares_.empty()) {
				rec = spares_.back();
				spares_.pop_back();
			}
		}
		if (!rec) {
			auto r = new_run(1, false);
			if (!r.ok())
				return r.err;
			rec = r.value;
		}
		if (error e = s.a.add_chunk(rec->run.alias); e != error::ok) {
			std::lock_guard<mutex> g(chunk_lock_);
			spares_.push_back(rec);
			return e;
		}
		table_.set_tag(rec->run.alias, make_tag(s, rec->run.alias));
		return error::ok;
	}

	/* The tag of shard s's chunk at base (s's lock held, or the shard's arena otherwise unchanging). */
	std::uintptr_t make_tag(const shard &s, std::uintptr_t base) const noexcept
	{
		return reinterpret_cast<std::uintptr_t>(s.a.chunk_at(base)) | s.index;
	}

	/* The empty chunk at base leaves shard s (lock held): populate() undone. */
	void detach_locked(shard &s, std::uintptr_t base) noexcept
	{
		table_.set_tag(base, 0);
		UA_CHECK(s.a.remove_chunk(base) == error::ok, "unmapped_cache: cannot remove an empty chunk");
	}

	/* A new run from the chunk source, published in the chunk table. */
	result<chunk_rec *> new_run(std::size_t nr_chunks, bool large) noexcept
	{
		std::lock_guard<mutex> g(chunk_lock_);
		UA_TRY {
			recs_.reserve(recs_.size() + 1);
			spares_.reserve(cfg_.spare_chunks + 1);
			unreleased_.reserve(recs_.size() + 1);
			/* Every record may come back to free_recs_ without allocating. */
			free_recs_.reserve(recs_.size() + free_recs_.size() + 1);
			if (free_recs_.empty())
				free_recs_.push_back(new chunk_rec());
		} UA_CATCH_ALL {
			return result<chunk_rec *>::failure(error::no_memory);
		}
		auto r = src_.acquire(nr_chunks);
		if (!r.ok())
			return result<chunk_rec *>::failure(r.err);
		chunk_rec *rec = free_recs_.back();
		rec->run = r.value;
		for (std::size_t i = 0; i < nr_chunks; i++) {
			if (table_.insert(rec->run.alias + i * chunk_size, rec) != error::ok) {
				while (i--)
					table_.erase(rec->run.alias + i * chunk_size);
				UA_CHECK(src_.release(rec->run) == error::ok, "unmapped_cache: cannot undo a chunk acquisition");
				return result<chunk_rec *>::failure(error::no_memory);
			}
		}
		free_recs_.pop_back();
		rec->in_use = true;
		rec->base.store(rec->run.alias, std::memory_order_relaxed);
		rec->bytes.store(rec->run.bytes(), std::memory_order_relaxed);
		rec->large.store(large, std::memory_order_release);
		recs_.push_back(rec);
		held_chunks_ += nr_chunks;
		if (held_chunks_ > peak_chunks_)
			peak_chunks_ = held_chunks_;
		return {rec, error::ok};
	}

	/*
	 * Unpublishes rec and gives its run back (chunk_lock_ held). The record
	 * goes to free_recs_ for reuse: records are type-stable. On failure the
	 * run is published again and still held.
	 */
	error release_rec_locked(chunk_rec *rec) noexcept
	{
		for (std::size_t i = 0; i < rec->run.nr_chunks; i++)
			table_.erase(rec->run.alias + i * chunk_size);
		if (src_.release(rec->run) != error::ok) {
			for (std::size_t i = 0; i < rec->run.nr_chunks; i++)
				UA_CHECK(table_.insert(rec->run.alias + i * chunk_size, rec) == error::ok,
					 "unmapped_cache: cannot republish a run");
			rec->base.store(rec->run.alias, std::memory_order_relaxed);
			return error::backend_failure;
		}
		for (auto &x : recs_)
			if (x == rec) {
				x = recs_.back();
				recs_.pop_back();
				break;
			}
		held_chunks_ -= rec->run.nr_chunks;
		rec->in_use = false;
		rec->large.store(false, std::memory_order_relaxed);
		free_recs_.push_back(rec); /* capacity reserved in new_run() */
		return error::ok;
	}

	/* Reclaims the arenas' retired chunk metadata after a grace period. No lock held. */
	void reclaim_retired() noexcept
	{
		rcu::synchronize();
		for (auto &sp : shards_) {
			std::lock_guard<mutex> g(sp->lock);
			sp->a.reclaim_retired();
		}
	}

	/* Validates that addr starts a live allocation of shard s (lock held). */
	static error check_start_locked(shard &s, std::uintptr_t addr) noexcept
	{
		auto l = s.a.lookup(addr);
		if (!l.ok())
			return l.err;
		return l.value.addr == addr ? error::ok : error::interior_pointer;
	}

	/*
	 * Frees addr, in the chunk whose table slot is sl, in shard s whose lock
	 * g holds; fills the range first so failure changes nothing.
	 */
	error free_locked(shard &s, std::unique_lock<mutex> &g, const slot_type &sl, std::uintptr_t addr) noexcept
	{
		/*
		 * A chunk joins and leaves a shard only under that shard's lock
		 * (populate, detach_locked), so the tag names s exactly when the
		 * chunk is in s, and then it names s's record of it and the slot's
		 * record cannot change. It names another shard, or none, only for a
		 * bad free that raced with the chunk emptying.
		 */
		std::uintptr_t tag = sl.tag.load(std::memory_order_relaxed);
		if (!tag || tag_shard(tag) != s.index)
			return error::not_live;
		chunk_rec *rec = sl.value.load(std::memory_order_relaxed);
		auto f = s.a.free_in(*tag_chunk(tag), addr, [&](std::uintptr_t a, std::size_t bytes) noexcept {
			return src_.fill(rec->run, a - rec->run.alias, cfg_.fill_byte(), bytes);
		});
		if (!f.ok())
			return f.err;
		if (!f.value.empty_chunk)
			return error::ok;
		/* The chunk is empty: take it out of the arena, keep it as a spare or give it back. */
		detach_locked(s, f.value.empty_chunk);
		bool reclaim = ++s.retired >= retired_batch;
		if (reclaim)
			s.retired = 0;
		g.unlock();
		park_or_release(rec);
		if (reclaim)
			reclaim_retired();
		return error::ok;
	}

	void park_or_release(chunk_rec *rec) noexcept
	{
		std::lock_guard<mutex> g(chunk_lock_);
		if (spares_.size() < cfg_.spare_chunks) {
			UA_TRY {
				spares_.push_back(rec);
				return;
			} UA_CATCH_ALL {
				/* no room to remember it: give it back instead */
			}
		}
		if (release_rec_locked(rec) != error::ok)
			spares_.push_back(rec); /* still held and usable; room reserved in new_run() */
	}

	result<void *> alloc_large(std::size_t size, ua_flags flags) noexcept
	{
		if (flags & ua_norefill)
			return result<void *>::failure(error::no_memory);
		std::size_t n = (size + chunk_size - 1) / chunk_size;
		auto r = new_run(n, true);
		if (!r.ok())
			return result<void *>::failure(r.err);
		/* A new run is filled already (trap bytes or zeroes); ua_zero needs zeroes. */
		if ((flags & ua_zero) && cfg_.fill_byte() != 0 &&
		    src_.fill(r.value->run, 0, 0, r.value->run.bytes()) != error::ok) {
			UA_CHECK(release_large(r.value) == error::ok, "unmapped_cache: cannot undo a large allocation");
			return result<void *>::failure(error::backend_failure);
		}
		return {reinterpret_cast<void *>(r.value->run.alias), error::ok};
	}

	error free_large(chunk_rec *rec, std::uintptr_t addr) noexcept
	{
		std::lock_guard<mutex> g(chunk_lock_);
		if (!rec->in_use || !rec->large)
			return error::not_live;
		if (addr != rec->run.alias)
			return error::interior_pointer;
		if (large_deferred_.count(addr))
			return error::not_live;
		release_large_locked(rec);
		return error::ok;
	}

	/*
	 * Gives a freed large run back (chunk_lock_ held). If the backend fails,
	 * the run is still held, possibly at a new alias (chunk_source::release),
	 * so it cannot stay the caller's allocation: it is no longer live and
	 * waits in unreleased_ for shrink() to give it back, as vfree() never
	 * fails to its caller.
	 */
	void release_large_locked(chunk_rec *rec) noexcept
	{
		if (release_rec_locked(rec) == error::ok)
			return;
		rec->large.store(false, std::memory_order_release);
		unreleased_.push_back(rec); /* room reserved in new_run() */
	}

	error release_large(chunk_rec *rec) noexcept
	{
		std::lock_guard<mutex> g(chunk_lock_);
		return release_rec_locked(rec);
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
		const slot_type *sl = table_.slot(addr);
		chunk_rec *rec = sl ? sl->value.load(std::memory_order_acquire) : nullptr;
		UA_CHECK(rec, "unmapped_cache: deferred free of a vanished chunk");
		if (rec->large.load(std::memory_order_acquire)) {
			std::lock_guard<mutex> g(chunk_lock_);
			large_deferred_.erase(addr);
			release_large_locked(rec);
		} else {
			/* The queued allocation is still live, so its chunk stays in its shard: the tag is set. */
			shard &s = *shards_[tag_shard(sl->tag.load(std::memory_order_acquire))];
			std::unique_lock<mutex> g(s.lock);
			auto node = s.deferred.extract(addr);
			error e = free_locked(s, g, *sl, addr);
			if (e != error::ok) {
				/* Nothing changed and the lock is still held: queue it again, without allocating. */
				UA_CHECK(e == error::backend_failure, "unmapped_cache: deferred free failed");
				s.deferred.insert(std::move(node));
				return false;
			}
		}
		pending_.fetch_sub(1, std::memory_order_release);
		return true;
	}

	static std::size_t shrinker_count(shrinker *sh, shrink_control *)
	{
		auto *c = static_cast<unmapped_cache *>(sh->private_data);
		std::lock_guard<mutex> g(c->chunk_lock_);
		return c->spares_.size() + c->unreleased_.size();
	}
	static std::size_t shrinker_scan(shrinker *sh, shrink_control *sc)
	{
		auto *c = static_cast<unmapped_cache *>(sh->private_data);
		std::size_t freed = c->shrink(sc->nr_to_scan);
		sc->nr_scanned = freed;
		return freed;
	}

	cache_config cfg_;
	chunk_source<Backend> src_;
	std::vector<std::unique_ptr<shard>> shards_;
	mutable mutex chunk_lock_;
	table_type table_;                           /* entries: chunk_lock_; tags: the holding shard's lock */
	std::vector<chunk_rec *> recs_;              /* chunk_lock_: records in use */
	std::vector<chunk_rec *> free_recs_;         /* chunk_lock_: records to reuse (type-stable) */
	std::vector<chunk_rec *> spares_;            /* chunk_lock_ */
	std::vector<chunk_rec *> unreleased_;        /* chunk_lock_: freed large runs whose release failed */
	std::unordered_set<std::uintptr_t> large_deferred_; /* chunk_lock_ */
	std::size_t held_chunks_ = 0, peak_chunks_ = 0;     /* chunk_lock_ */
	std::atomic<std::size_t> pending_{0};
	shrinker shrinker_;
};

}  // namespace ua
