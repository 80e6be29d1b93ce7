// SPDX-License-Identifier: MIT
/*
 * cache/shrinker.h - memory-pressure callbacks in the kernel's shape.
 *
 * As struct shrinker in include/linux/shrinker.h: count_objects() says how
 * many objects could be freed (here: chunks a cache holds without live
 * allocations), scan_objects() frees up to sc.nr_to_scan of them and returns
 * how many it freed (or shrink_stop when it cannot make progress now). The
 * registry is global, like the kernel's shrinker list; shrink_all() asks every
 * registered shrinker to give back everything it can (drop_caches).
 *
 * This is the one documented call upwards in the library: the registry calls
 * into caches. It holds its lock while a callback runs, so callbacks must not
 * register or unregister shrinkers. Lock order: shrinker registry lock ->
 * cache locks -> machine lock.
 */
#pragma once

#include <cstddef>
#include <vector>

#include "../ds.h"
#include "../thread_safety.h"

namespace ua {

struct shrink_control {
	std::size_t nr_to_scan = 0;
	std::size_t nr_scanned = 0;
};

inline constexpr std::size_t shrink_stop = ~std::size_t{0};

struct shrinker {
	const char *name = "";
	std::size_t (*count_objects)(shrinker *, shrink_control *) = nullptr;
	std::size_t (*scan_objects)(shrinker *, shrink_control *) = nullptr;
	void *private_data = nullptr;
};

class shrinker_registry {
public:
	static shrinker_registry &global()
	{
		static shrinker_registry r;
		return r;
	}

	void register_shrinker(shrinker *s)
	{
		mutex_guard g(lock_);
		list_.push_back(s);
	}
	void unregister_shrinker(shrinker *s)
	{
		mutex_guard g(lock_);
		for (auto it = list_.begin(); it != list_.end(); ++it)
			if (*it == s) {
				list_.erase(it);
				return;
			}
	}

	/* Sum of count_objects() over every shrinker. */
	std::size_t count() const
	{
		mutex_guard g(lock_);
		std::size_t n = 0;
		for (shrinker *s : list_) {
			shrink_control sc;
			n += s->count_objects(s, &sc);
		}
		return n;
	}

	/* Asks each shrinker to free up to nr_to_scan objects; returns how many were freed. */
	std::size_t shrink(std::size_t nr_to_scan)
	{
		mutex_guard g(lock_);
		std::size_t freed = 0;
		for (shrinker *s : list_) {
			if (freed >= nr_to_scan)
				break;
			shrink_control sc{nr_to_scan - freed, 0};
			if (s->count_objects(s, &sc) == 0)
				continue;
			std::size_t f = s->scan_objects(s, &sc);
			if (f != shrink_stop)
				freed += f;
		}
		return freed;
	}

	/* Global shrink: everything every shrinker can give back. */
	std::size_t shrink_all() { return shrink(~std::size_t{0} - 1); }

private:
	mutable mutex lock_;
	std::vector<shrinker *> list_ UA_GUARDED_BY(lock_);
};

}  // namespace ua
