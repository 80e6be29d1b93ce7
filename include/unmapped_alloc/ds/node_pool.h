// SPDX-License-Identifier: MIT
/*
 * ds/node_pool.h - a pool of fixed-size metadata nodes in ordinary memory.
 *
 * Allocator metadata never lives in managed memory (it may be unmapped or
 * executable), and the hot path must not call malloc per operation. The pool
 * hands out nodes from blocks it allocates with operator new in batches and
 * keeps freed nodes on a free list threaded through the nodes themselves
 * (the node storage is ordinary heap memory, so that is safe).
 *
 * reserve(n) lets a caller guarantee, before it changes anything, that n
 * nodes can be taken without allocating: the arena uses it so that free()
 * never needs memory and an allocation fails cleanly (no_memory) up front.
 * Blocks are returned to the system only when the pool is destroyed. Not
 * thread-safe: the owner locks.
 */
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "../check.h"
#include "../error.h"

namespace ua {

template <class T, std::size_t BlockNodes = 256>
class node_pool {
	union slot {
		slot *next;
		alignas(T) unsigned char storage[sizeof(T)];
	};

public:
	node_pool() = default;
	node_pool(const node_pool &) = delete;
	node_pool &operator=(const node_pool &) = delete;

	/* Ensures at least n nodes can be taken without allocating. False on failure (nothing changed). */
	bool reserve(std::size_t n) noexcept
	{
		while (free_count_ < n) {
			if (!grow())
				return false;
		}
		return true;
	}

	/* Constructs a node; nullptr when memory runs out. */
	template <class... Args>
	T *create(Args &&...args) noexcept
	{
		if (!free_ && !grow())
			return nullptr;
		slot *s = free_;
		free_ = s->next;
		free_count_--;
		in_use_++;
		return ::new (static_cast<void *>(s->storage)) T(std::forward<Args>(args)...);
	}

	void destroy(T *node) noexcept
	{
		node->~T();
		slot *s = reinterpret_cast<slot *>(node);
		s->next = free_;
		free_ = s;
		free_count_++;
		in_use_--;
	}

	std::size_t in_use() const noexcept { return in_use_; }
	std::size_t available() const noexcept { return free_count_; }
	std::size_t memory_bytes() const noexcept
	{
		return blocks_.size() * BlockNodes * sizeof(slot) + blocks_.capacity() * sizeof(void *);
	}

private:
	bool grow() noexcept
	{
		std::unique_ptr<slot[]> b(new (std::nothrow) slot[BlockNodes]);
		if (!b)
			return false;
		UA_TRY {
			blocks_.push_back(std::move(b));
		} UA_CATCH_ALL {
			return false;
		}
		slot *base = blocks_.back().get();
		for (std::size_t i = BlockNodes; i-- > 0;) {
			base[i].next = free_;
			free_ = &base[i];
		}
		free_count_ += BlockNodes;
		return true;
	}

	std::vector<std::unique_ptr<slot[]>> blocks_;
	slot *free_ = nullptr;
	std::size_t free_count_ = 0, in_use_ = 0;
};

}  // namespace ua
