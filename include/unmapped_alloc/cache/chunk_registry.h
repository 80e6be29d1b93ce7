// SPDX-License-Identifier: MIT
/*
 * cache/chunk_registry.h - the runs of chunks a cache holds, under its chunk lock.
 *
 * Every run of chunks a cache takes from its chunk_source (cache/chunk_source.h)
 * has a record here, and every chunk of the run maps to that record in the
 * chunk table (ds/chunk_table.h), so that a pointer finds its record with one
 * table walk and no lock. The registry publishes a run (new_run) and
 * unpublishes it (release_locked), keeps completely free chunks as spares
 * (park_or_release), keeps large runs whose release failed until a shrink
 * gives them back, and shrinks.
 *
 * A record's state says which of these it is in (chunk_state below); the
 * lists (spares_, unreleased_) only order the records of one state. The
 * state is an atomic written under the chunk lock, so lockless readers
 * (cache/unmapped_cache.h's free() and find_allocation(), under RCU) may read
 * it; what they read is a hint, checked again under a lock.
 *
 * Records are type-stable: one that leaves use goes to free_recs_ and is
 * reused, never freed before the registry is (SLAB_TYPESAFE_BY_RCU), so a
 * lockless reader that loaded a stale record reads valid memory. Every list
 * has room reserved for every record when the record is created (new_run),
 * so moving a record between states never allocates and never fails.
 *
 * Locking: `lock` (the cache's chunk lock) protects the records' states and
 * runs, the lists, and the chunk table's entries (insert, erase); the table's
 * tags are the holding shard's (cache/unmapped_cache.h). It is taken after a
 * shard lock and before the machine lock (machine::lock, taken inside
 * chunk_source).
 */
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <vector>

#include "../check.h"
#include "../ds.h"
#include "../error.h"
#include "../thread_safety.h"
#include "cache_config.h"
#include "chunk_source.h"

namespace ua {

/* Where a chunk record is. Written under the chunk lock; read anywhere as a hint. */
enum class chunk_state : std::uint8_t {
	free_rec,       /* no run: on free_recs_, waiting for reuse */
	in_shard,       /* one chunk, held by a shard (being added to its arena, in it, or being removed) */
	spare,          /* one completely free chunk, in no arena, on spares_ */
	large,          /* a run serving one large allocation */
	large_deferred, /* a large allocation freed with free_deferred(), waiting for its grace period */
	unreleased,     /* a freed large run whose release failed: on unreleased_ until a shrink */
};

/* A large allocation, live or waiting to be freed: its run is the caller's. */
constexpr bool is_large(chunk_state s) noexcept { return s == chunk_state::large || s == chunk_state::large_deferred; }

/* One per run of chunks a cache holds; every chunk of the run maps to it. */
struct chunk_rec {
	chunk_run run;                                   /* chunk lock; written before publication */
	std::atomic<chunk_state> state{chunk_state::free_rec};
	std::atomic<std::uintptr_t> base{0};             /* run.alias, for lockless readers */
	std::atomic<std::size_t> bytes{0};               /* run.bytes(), for lockless readers */
	std::size_t idx = 0;                             /* chunk lock: its place in the registry's recs_ */

	chunk_state get() const noexcept { return state.load(std::memory_order_acquire); }
	void set(chunk_state s) noexcept { state.store(s, std::memory_order_release); }
};

/* What chunk_registry::stats() reports. */
struct registry_stats {
	std::size_t large_bytes = 0;    /* bytes of large runs (live or waiting for a grace period) */
	std::size_t large_chunks = 0;
	std::size_t large_runs = 0;
	std::size_t spare_chunks = 0;   /* spares and unreleased runs' chunks */
	std::size_t peak_chunks = 0;
	std::size_t metadata_bytes = 0; /* table, lists, records */
};

template <mapping_backend Backend>
class chunk_registry {
public:
	using table_type = chunk_table<chunk_rec, true>;
	using slot_type = typename table_type::slot_type;

	chunk_registry(machine<Backend> &m, const cache_config &cfg) noexcept : cfg_(cfg), src_(m, cfg) {}
	chunk_registry(const chunk_registry &) = delete;
	chunk_registry &operator=(const chunk_registry &) = delete;

	/*
	 * Gives every run back (live allocations included) and frees the
	 * records. A backend that fails here does not stop the process: a run
	 * whose release keeps failing is leaked and counted in the machine
	 * (chunk_source::release_at_teardown(), docs/reliability.md).
	 */
	~chunk_registry()
	{
		if (abandoned_)
			return;
		mutex_guard g(lock);
		for (chunk_rec *rec : recs_) {
			unpublish_locked(rec);
			src_.release_at_teardown(rec->run);
			delete rec;
		}
		for (chunk_rec *rec : free_recs_)
			delete rec;
	}

	/*
	 * In the child of a fork() (cache/fork.h): the runs are the parent's, so
	 * the destructor gives nothing back and takes no lock; the records are
	 * left to the child's exit.
	 */
	void abandon_after_fork() noexcept
	{
		abandoned_ = true;
		src_.abandon_after_fork();
	}

	/* The cache's chunk lock: taken before the machine's (cache/unmapped_cache.h, Locking). */
	mutable mutex lock UA_ACQUIRED_BEFORE(src_.machine_lock());

	chunk_source<Backend> &source() noexcept { return src_; }
	const chunk_source<Backend> &source() const noexcept { return src_; }
	table_type &table() noexcept { return table_; }
	const table_type &table() const noexcept { return table_; }

	/*
	 * A new run of nr_chunks chunks from the chunk source, published in the
	 * chunk table in state st (in_shard or large). Takes the lock.
	 */
	result<chunk_rec *> new_run(std::size_t nr_chunks, chunk_state st) noexcept UA_EXCLUDES(lock)
	{
		mutex_guard g(lock);
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
				/* Cannot fail: acquire() succeeded only with room for one more repair record,
				 * and this release, under the same chunk lock, records into it if a step fails. */
				UA_CHECK(src_.release(rec->run) == error::ok, "unmapped_cache: cannot undo a chunk acquisition");
				return result<chunk_rec *>::failure(error::no_memory);
			}
		}
		free_recs_.pop_back();
		rec->base.store(rec->run.alias, std::memory_order_relaxed);
		rec->bytes.store(rec->run.bytes(), std::memory_order_relaxed);
		set_locked(rec, st);
		rec->idx = recs_.size();
		recs_.push_back(rec);
		held_chunks_ += nr_chunks;
		if (held_chunks_ > peak_chunks_)
			peak_chunks_ = held_chunks_;
		return {rec, error::ok};
	}

	/* A spare chunk for a shard (now in_shard), or nullptr. Takes the lock. */
	chunk_rec *take_spare() noexcept UA_EXCLUDES(lock)
	{
		mutex_guard g(lock);
		if (spares_.empty())
			return nullptr;
		chunk_rec *rec = spares_.back();
		spares_.pop_back();
		set_locked(rec, chunk_state::in_shard);
		return rec;
	}

	/* A chunk a shard took but could not use goes back to the spares. Takes the lock. */
	void return_spare(chunk_rec *rec) noexcept UA_EXCLUDES(lock)
	{
		mutex_guard g(lock);
		spare_locked(rec);
	}

	/* A chunk that left its shard empty: kept as a spare, up to cfg.spare_chunks, or given back. */
	void park_or_release(chunk_rec *rec) noexcept UA_EXCLUDES(lock)
	{
		mutex_guard g(lock);
		if (spares_.size() < cfg_.spare_chunks) {
			spare_locked(rec);
			return;
		}
		if (release_locked(rec) != error::ok)
			spare_locked(rec); /* still held and usable */
	}

	/*
	 * Unpublishes rec and gives its run back. The record goes to free_recs_
	 * for reuse. On failure the run is published again, still held (possibly
	 * at a new alias, chunk_source::release) and rec's state is unchanged.
	 */
	error release_locked(chunk_rec *rec) noexcept UA_REQUIRES(lock)
	{
		unpublish_locked(rec);
		if (src_.release(rec->run) != error::ok) {
			for (std::size_t i = 0; i < rec->run.nr_chunks; i++)
				UA_CHECK(table_.insert(rec->run.alias + i * chunk_size, rec) == error::ok,
					 "unmapped_cache: cannot republish a run");
			rec->base.store(rec->run.alias, std::memory_order_relaxed);
			return error::backend_failure;
		}
		/* O(1): the last record takes its place. */
		chunk_rec *last = recs_.back();
		recs_[rec->idx] = last;
		last->idx = rec->idx;
		recs_.pop_back();
		held_chunks_ -= rec->run.nr_chunks;
		set_locked(rec, chunk_state::free_rec);
		free_recs_.push_back(rec); /* capacity reserved in new_run() */
		return error::ok;
	}

	/*
	 * A freed large run goes back; if the backend fails, the run is still
	 * held, possibly at a new alias, so it cannot stay the caller's
	 * allocation: it is no longer live and waits in unreleased_ for a shrink,
	 * as vfree() never fails to its caller.
	 */
	void release_large_locked(chunk_rec *rec) noexcept UA_REQUIRES(lock)
	{
		if (release_locked(rec) == error::ok)
			return;
		set_locked(rec, chunk_state::unreleased);
		unreleased_.push_back(rec); /* room reserved in new_run() */
	}

	/* Gives back up to nr chunks: unreleased runs first, then spares. Returns how many went back. */
	std::size_t shrink(std::size_t nr) noexcept UA_EXCLUDES(lock)
	{
		mutex_guard g(lock);
		std::size_t freed = give_back_locked(unreleased_, nr); /* first: they are no use to anyone */
		return freed + give_back_locked(spares_, nr);
	}

	/* What a shrink could give back now (the shrinker's count_objects). */
	std::size_t reclaimable() const noexcept UA_EXCLUDES(lock)
	{
		mutex_guard g(lock);
		return spares_.size() + unreleased_.size();
	}

	/* The registry's figures: large runs, spare chunks, peak, its metadata outside the cache object. */
	registry_stats stats() const noexcept UA_EXCLUDES(lock)
	{
		mutex_guard g(lock);
		registry_stats st;
		st.large_bytes = large_bytes_;
		st.large_chunks = large_chunks_;
		st.large_runs = large_runs_;
		st.spare_chunks = spares_.size();
		for (chunk_rec *rec : unreleased_)
			st.spare_chunks += rec->run.nr_chunks;
		st.peak_chunks = peak_chunks_;
		st.metadata_bytes = table_.memory_bytes() + (recs_.capacity() + free_recs_.capacity()) * sizeof(void *) +
				    (recs_.size() + free_recs_.size()) * sizeof(chunk_rec);
		return st;
	}

	/* Expensive: each record is published, and its state agrees with the lists. "" when consistent. */
	std::string check_consistency() const UA_EXCLUDES(lock)
	{
		mutex_guard g(lock);
		for (chunk_rec *rec : recs_) {
			for (std::size_t i = 0; i < rec->run.nr_chunks; i++)
				if (table_.lookup(rec->run.alias + i * chunk_size) != rec)
					return "chunk record missing from the chunk table";
			if (rec->get() == chunk_state::free_rec)
				return "a held chunk record is marked free";
		}
		for (chunk_rec *rec : spares_)
			if (rec->get() != chunk_state::spare || rec->run.nr_chunks != 1)
				return "a spare chunk's record is not in state spare";
		for (chunk_rec *rec : unreleased_)
			if (rec->get() != chunk_state::unreleased)
				return "an unreleased run's record is not in state unreleased";
		for (chunk_rec *rec : free_recs_)
			if (rec->get() != chunk_state::free_rec)
				return "a free chunk record is still in use";
		std::size_t nr_spare = 0, nr_unreleased = 0, nr_large = 0, large_chunks = 0, large_bytes = 0;
		for (std::size_t i = 0; i < recs_.size(); i++) {
			const chunk_rec *rec = recs_[i];
			if (rec->idx != i)
				return "a chunk record's place in the registry is wrong";
			nr_spare += rec->get() == chunk_state::spare;
			nr_unreleased += rec->get() == chunk_state::unreleased;
			if (is_large(rec->get())) {
				nr_large++;
				large_chunks += rec->run.nr_chunks;
				large_bytes += rec->run.bytes();
			}
		}
		if (nr_large != large_runs_ || large_chunks != large_chunks_ || large_bytes != large_bytes_)
			return "the large-run totals disagree with the records";
		if (nr_spare != spares_.size() || nr_unreleased != unreleased_.size())
			return "records' states disagree with the spare and unreleased lists";
		return {};
	}

private:
	/*
	 * Gives back up to nr of list's records, last first, counting nr down;
	 * one whose release fails stays on the list, moved to its front (room:
	 * it was just taken out). Returns how many went back.
	 */
	std::size_t give_back_locked(std::vector<chunk_rec *> &list, std::size_t &nr) noexcept UA_REQUIRES(lock)
	{
		std::size_t freed = 0;
		for (std::size_t tried = list.size(); nr && tried; tried--, nr--) {
			chunk_rec *rec = list.back();
			list.pop_back();
			if (release_locked(rec) == error::ok)
				freed++;
			else
				list.insert(list.begin(), rec);
		}
		return freed;
	}

	/* Every state change of a published record: keeps the large-run totals stats() reports in O(1). */
	void set_locked(chunk_rec *rec, chunk_state st) noexcept UA_REQUIRES(lock)
	{
		const bool was = is_large(rec->get()), now = is_large(st);
		if (was != now) {
			if (now) {
				large_runs_++;
				large_chunks_ += rec->run.nr_chunks;
				large_bytes_ += rec->run.bytes();
			} else {
				large_runs_--;
				large_chunks_ -= rec->run.nr_chunks;
				large_bytes_ -= rec->run.bytes();
			}
		}
		rec->set(st);
	}

	void spare_locked(chunk_rec *rec) noexcept UA_REQUIRES(lock)
	{
		set_locked(rec, chunk_state::spare);
		spares_.push_back(rec); /* room reserved in new_run() */
	}

	void unpublish_locked(chunk_rec *rec) noexcept UA_REQUIRES(lock)
	{
		for (std::size_t i = 0; i < rec->run.nr_chunks; i++)
			table_.erase(rec->run.alias + i * chunk_size);
	}

	const cache_config &cfg_;
	chunk_source<Backend> src_;
	table_type table_;                                    /* entries: lock; tags: the holding shard's lock */
	std::vector<chunk_rec *> recs_ UA_GUARDED_BY(lock);   /* records in use (every state but free_rec) */
	std::vector<chunk_rec *> free_recs_ UA_GUARDED_BY(lock);
	std::vector<chunk_rec *> spares_ UA_GUARDED_BY(lock);
	std::vector<chunk_rec *> unreleased_ UA_GUARDED_BY(lock);
	std::size_t held_chunks_ UA_GUARDED_BY(lock) = 0;
	std::size_t large_runs_ UA_GUARDED_BY(lock) = 0, large_chunks_ UA_GUARDED_BY(lock) = 0;
	std::size_t large_bytes_ UA_GUARDED_BY(lock) = 0; /* live or deferred large runs (set_locked()) */
	std::size_t peak_chunks_ UA_GUARDED_BY(lock) = 0;
	bool abandoned_ = false; /* abandon_after_fork() */
};

}  // namespace ua
