// SPDX-License-Identifier: MIT
/*
 * peers/bpf_prog_pack.h - bpf_prog_pack (kernel/bpf/core.c), by release.
 *
 * Common to every release (57631054fae6 onwards):
 *   - packs in a list in creation order (alloc_new_pack(): list_add_tail()),
 *     one global mutex (pack_mutex), a bitmap per pack with one bit per
 *     BPF_PROG_CHUNK_SIZE = 64 bytes; bpf_prog_pack_alloc() takes the first
 *     pack, in list order, where bitmap_find_next_zero_area(bitmap,
 *     BPF_PROG_CHUNK_COUNT, 0, nbits, 0) finds room: first fit, no mask;
 *   - a new pack is vmalloc'ed (module_alloc(), from 6.10
 *     bpf_jit_alloc_exec() = execmem_alloc(EXECMEM_BPF), which has no ROX
 *     cache on x86), filled with INT3 (bpf_fill_ill_insns()), marked
 *     VM_FLUSH_RESET_PERMS and made read-only + executable: set_memory_ro()
 *     then set_memory_x() before 6.2, set_memory_rox() (d48567c9a0d1) from
 *     6.2. The CPA alias step changes the direct map of every frame of the
 *     pack (set_memory.h);
 *   - bpf_prog_pack_free(): INT3 over the freed range
 *     (bpf_arch_text_invalidate() = text_poke_set()), bits cleared, and an
 *     empty pack is freed at once (no spare) through vfree() with
 *     vm_reset_perms();
 *   - a request larger than a pack takes its own round_up(size, PAGE_SIZE)
 *     vmalloc area: INT3, VM_FLUSH_RESET_PERMS, ro + x / rox.
 * What a pack is, by release (research/peers_by_release.md):
 *   5.18-rc1  (and -rc2) PMD_SIZE, one huge (order-9) vmalloc page
 *             (fac54e2bfb5b made module_alloc() huge), its direct map
 *             changed in place; VM_FLUSH_RESET_PERMS then resets it page by
 *             page at free, which splits it;
 *   5.18-rc3  PAGE_SIZE: 559089e0a93d (5.18-rc3) made huge vmalloc opt-in,
 *             so select_bpf_prog_pack_size()'s huge test fails; 5.18 and
 *             5.19 shipped this;
 *   6.0       ea2babac63d4: PMD_SIZE * num_possible_nodes() (SZ_2M from
 *             2024) of order-0 vmalloc pages, one node here: 512 frames.
 * Sizes are taken as the JIT passes them (round_up(proglen + 4 + 16, 64))
 * and rounded to 64 B; alignment above 64 B is refused.
 *
 * pack_source::freetype_unmapped composes the pack with the 2026 freetype
 * __GFP_UNMAPPED (freetype_pool.h): the pack's 512 order-0 pages come out of
 * the direct map inside the page allocator, a pageblock at a time, so the
 * set_memory_rox() alias step finds them not present and changes nothing,
 * and a freed pack gives its pages back to the unmapped lists without
 * vm_reset_perms() (mapping them back would defeat the freetype). No kernel
 * ships this composition.
 *
 * Length: about 430 lines, just over the usual 400: one peer, its releases
 * and its two pack sources, each rule beside the release that changed it.
 */
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "freetype_pool.h"
#include "set_memory.h"

namespace ua::peers {

enum class pack_source { page_allocator, freetype_unmapped };

struct bpf_prog_pack_config {
	linux_version release = newest_release;
	pack_source source = pack_source::page_allocator;
};

template <mapping_backend B>
class bpf_prog_pack_peer {
public:
	static constexpr const char *name = "bpf-prog-pack";
	static constexpr linux_version releases[] = {v5_18_rc, v5_18_rc3, v6_0, v6_2};
	static constexpr bool proposal = false;
	static constexpr std::size_t prog_chunk = 64; /* BPF_PROG_CHUNK_SIZE */

	explicit bpf_prog_pack_peer(machine<B> &m, bpf_prog_pack_config cfg = {})
		: m_(m), cfg_(cfg), at_(release_at(releases, cfg.release)),
		  pack_pages_(at_ == v5_18_rc3 ? 1 : pages_per_chunk)
	{
		if (cfg_.source == pack_source::freetype_unmapped)
			pool_ = std::make_unique<freetype_pool<B>>(m_);
	}
	bpf_prog_pack_peer(const bpf_prog_pack_peer &) = delete;
	bpf_prog_pack_peer &operator=(const bpf_prog_pack_peer &) = delete;
	~bpf_prog_pack_peer()
	{
		while (!live_.empty())
			must(int(free(live_.begin()->first)), "bpf-prog-pack: release at destruction");
		drain();
	}

	/* False when the release has no bpf_prog_pack (before 5.18-rc1): every alloc is not_supported. */
	bool supported() const noexcept { return at_ != linux_version{}; }
	std::size_t pack_size() const noexcept { return std::size_t(pack_pages_) << page_shift; }
	std::size_t chunk_count() const noexcept { return pack_size() / prog_chunk; }

	result<std::uintptr_t> alloc(std::size_t size, std::size_t align)
	{
		using res = result<std::uintptr_t>;
		if (!supported())
			return res::failure(error::not_supported);
		if (error e = check_request(size, align, prog_chunk); e != error::ok)
			return res::failure(e);
		if (pages_of(size) > m_.nr_pages())
			return res::failure(error::too_large);
		std::lock_guard<std::mutex> g(lock_);
		if (size > pack_size()) {
			vm_area a;
			{
				ua::mutex_guard mg(m_.lock);
				if (error e = new_area_locked(pages_of(size), a); e != error::ok)
					return res::failure(e);
			}
			for (const frame_range &r : a.runs)
				census_.add(r);
			const std::uintptr_t addr = a.addr;
			live_bytes_ += a.bytes();
			requested_ += size;
			live_.emplace(addr, record{nullptr, 0, size, std::move(a)});
			return {addr, error::ok};
		}
		const std::size_t nbits = (size + prog_chunk - 1) / prog_chunk;
		pack *pk = nullptr;
		std::size_t pos = 0;
		for (pack &p : packs_) {
			pos = find_zero_area(p.bitmap, nbits);
			if (pos < chunk_count()) {
				pk = &p;
				break;
			}
		}
		if (!pk) {
			if (error e = alloc_new_pack(); e != error::ok)
				return res::failure(e);
			pk = &packs_.back();
			pos = 0;
		}
		for (std::size_t i = pos; i < pos + nbits; i++)
			pk->bitmap[i >> 6] |= std::uint64_t{1} << (i & 63);
		pk->used += nbits;
		const std::uintptr_t addr = pk->area.addr + pos * prog_chunk;
		live_bytes_ += nbits * prog_chunk;
		requested_ += size;
		live_.emplace(addr, record{pk, nbits, size, {}});
		return {addr, error::ok};
	}

	error free(std::uintptr_t p)
	{
		std::lock_guard<std::mutex> g(lock_);
		auto it = live_.find(p);
		if (it == live_.end())
			return classify(p);
		record &rec = it->second;
		if (!rec.pk) {
			{
				ua::mutex_guard mg(m_.lock);
				if (error e = free_area_locked(rec.big); e != error::ok)
					return e;
			}
			for (const frame_range &r : rec.big.runs)
				census_.remove(r);
			live_bytes_ -= rec.big.bytes();
		} else {
			pack &pk = *rec.pk;
			const std::size_t pos = (p - pk.area.addr) / prog_chunk;
			/* bpf_arch_text_invalidate(): INT3 over the freed range, through text_poke_set(). */
			if (vm_fill(m_.backend, pk.area, pos * prog_chunk, trap_byte, rec.nbits * prog_chunk) != 0)
				return error::backend_failure;
			for (std::size_t i = pos; i < pos + rec.nbits; i++)
				pk.bitmap[i >> 6] &= ~(std::uint64_t{1} << (i & 63));
			pk.used -= rec.nbits;
			live_bytes_ -= rec.nbits * prog_chunk;
			if (pk.used == 0)
				(void)free_pack(&pk); /* on failure the empty pack stays listed; drain() retries */
		}
		requested_ -= rec.requested;
		live_.erase(it);
		return error::ok;
	}

	/* Nothing is cached by design; an empty pack left by a failed release goes now, and the pool's free blocks. */
	void drain()
	{
		std::lock_guard<std::mutex> g(lock_);
		for (auto it = packs_.begin(); it != packs_.end();) {
			pack *pk = &*it++;
			if (pk->used == 0)
				(void)free_pack(pk);
		}
		if (pool_) {
			ua::mutex_guard mg(m_.lock);
			pool_->release_locked(m_.pages, counts_);
		}
	}

	peer_stats stats() const
	{
		std::lock_guard<std::mutex> g(lock_);
		peer_stats s;
		s.live_count = live_.size();
		s.live_bytes = live_bytes_;
		s.requested_bytes = requested_;
		s.pages_held = census_.pages();
		s.chunks = census_.chunks();
		s.metadata_bytes = census_.metadata_bytes() +
				   packs_.size() * (sizeof(pack) + chunk_count() / 8 + 2 * sizeof(void *)) +
				   live_.size() * map_node_bytes<std::uintptr_t, record>;
		if (pool_) {
			/* What the peer holds is what its pool took: handed-out pages and its free lists. */
			ua::mutex_guard mg(m_.lock);
			s.pages_held = pool_->pages_taken();
			s.chunks = 0;
			for (const auto &[pfn, order] : pool_->lists().blocks())
				s.chunks += order > chunk_order ? std::uint64_t{1} << (order - chunk_order) : 1;
			s.metadata_bytes += pool_->metadata_bytes();
		}
		s.dm_changes = counts_.dm_changes;
		s.flushes = counts_.flushes;
		return s;
	}

	std::size_t nr_packs() const
	{
		std::lock_guard<std::mutex> g(lock_);
		return packs_.size();
	}
	/* The unmapped pool under the packs (pack_source::freetype_unmapped), else nullptr. */
	const freetype_pool<B> *pool() const noexcept { return pool_.get(); }

private:
	struct pack {
		vm_area area;
		std::vector<std::uint64_t> bitmap;
		std::size_t used = 0;
	};
	struct record {
		pack *pk; /* nullptr: a request larger than a pack */
		std::size_t nbits;
		std::size_t requested;
		vm_area big;
	};

	/* bitmap_find_next_zero_area(map, chunk_count, 0, nbits, 0): lowest run of nbits clear bits. */
	std::size_t find_zero_area(const std::vector<std::uint64_t> &map, std::size_t nbits) const
	{
		const std::size_t count = chunk_count();
		std::size_t i = 0;
		while (i < count) {
			i = next_bit(map, i, false);
			if (i + nbits > count)
				return count;
			const std::size_t end = next_bit(map, i, true);
			if (end - i >= nbits)
				return i;
			i = end;
		}
		return count;
	}
	/* First index >= from whose bit equals `set`, or chunk_count(). */
	std::size_t next_bit(const std::vector<std::uint64_t> &map, std::size_t from, bool set) const
	{
		const std::size_t count = chunk_count();
		while (from < count) {
			std::uint64_t w = set ? map[from >> 6] : ~map[from >> 6];
			w &= ~std::uint64_t{0} << (from & 63);
			if (w) {
				const std::size_t i = (from & ~std::size_t{63}) + std::size_t(std::countr_zero(w));
				return i < count ? i : count;
			}
			from = (from | 63) + 1;
		}
		return count;
	}

	/*
	 * A pack's or an oversized program's area: vmalloc (huge for the
	 * 5.18-rc pack) or freetype pages, INT3, VM_FLUSH_RESET_PERMS,
	 * set_memory_ro + _x (before 6.2) or set_memory_rox, alias rx.
	 * Machine lock held. All or nothing.
	 */
	error new_area_locked(std::uint64_t nr_pages, vm_area &out) UA_REQUIRES(m_.lock)
	{
		vm_area a;
		const bool huge = at_ == v5_18_rc; /* module_alloc() was huge for every area of 2 MiB multiples */
		if (pool_) {
			if (error e = pool_pages_locked(nr_pages, a); e != error::ok)
				return e;
		} else if (error e = vmalloc_locked(m_, nr_pages, vmalloc_opts{huge, prot::rw, trap_byte}, a); e != error::ok) {
			return e;
		}
		/* set_memory_ro() + set_memory_x() before 6.2, set_memory_rox() after: the alias becomes rx. */
		const bool rox = at_ >= v6_2;
		if (error e = set_memory_locked(m_, a, 0, nr_pages, rox ? cpa_op::rox : cpa_op::ro, counts_); e != error::ok) {
			release_area_locked(a);
			return e;
		}
		if (!rox) {
			if (error e = set_memory_locked(m_, a, 0, nr_pages, cpa_op::x, counts_); e != error::ok) {
				must(int(set_memory_locked(m_, a, 0, nr_pages, cpa_op::rw, counts_)), "bpf-prog-pack: undo of ro");
				release_area_locked(a);
				return e;
			}
		}
		out = std::move(a);
		return error::ok;
	}

	/* nr_pages order-0 __GFP_UNMAPPED pages at one alias, INT3-filled. Machine lock held. */
	error pool_pages_locked(std::uint64_t nr_pages, vm_area &out) UA_REQUIRES(m_.lock)
	{
		vm_area a;
		auto undo = [&](error e) {
			for (const frame_range &r : a.runs)
				for (pfn_t p = r.pfn; p < r.end(); p++)
					pool_->free_locked(p, 0);
			return e;
		};
		for (std::uint64_t i = 0; i < nr_pages; i++) {
			auto r = pool_->alloc_locked(m_.pages, 0, false, counts_);
			if (!r)
				return undo(r.err);
			if (!a.runs.empty() && a.runs.back().end() == r.value)
				a.runs.back().nr_pages++;
			else
				a.runs.push_back({r.value, 1});
			a.nr_pages++;
		}
		for (const frame_range &r : a.runs)
			if (m_.backend.fill_frames(r.pfn, 0, trap_byte, r.bytes()) != 0)
				return undo(error::backend_failure);
		if (m_.backend.map_alias_runs(a.runs.data(), a.runs.size(), prot::rw, &a.addr) != 0)
			return undo(error::backend_failure);
		out = std::move(a);
		return error::ok;
	}

	/* Undo of new_area_locked() before the area was handed out: no reset (nothing is ro). */
	void release_area_locked(const vm_area &a) UA_REQUIRES(m_.lock)
	{
		if (!pool_) {
			must(int(vfree_locked(m_, a, false, counts_)), "bpf-prog-pack: free during rollback");
			return;
		}
		must(m_.backend.unmap_alias(a.addr, a.bytes()), "bpf-prog-pack: unmap during rollback");
		for (const frame_range &r : a.runs)
			for (pfn_t p = r.pfn; p < r.end(); p++)
				pool_->free_locked(p, 0);
	}

	/* vfree() with VM_FLUSH_RESET_PERMS, or the pages back to the unmapped lists. Machine lock held. */
	error free_area_locked(const vm_area &a) UA_REQUIRES(m_.lock)
	{
		if (!pool_)
			return vfree_locked(m_, a, true, counts_);
		must(m_.backend.unmap_alias(a.addr, a.bytes()), "bpf-prog-pack: unmap of an alias it mapped");
		for (const frame_range &r : a.runs)
			for (pfn_t p = r.pfn; p < r.end(); p++)
				pool_->free_locked(p, 0);
		return error::ok;
	}

	/* alloc_new_pack(): a pack area, its bitmap, at the list's tail. */
	error alloc_new_pack()
	{
		pack pk;
		pk.bitmap.assign((chunk_count() + 63) / 64, 0);
		{
			ua::mutex_guard mg(m_.lock);
			if (error e = new_area_locked(pack_pages_, pk.area); e != error::ok)
				return e;
		}
		for (const frame_range &r : pk.area.runs)
			census_.add(r);
		packs_.push_back(std::move(pk));
		return error::ok;
	}

	/* list_del() + vfree(). On failure the pack stays, unchanged. */
	error free_pack(pack *pk)
	{
		{
			ua::mutex_guard mg(m_.lock);
			if (error e = free_area_locked(pk->area); e != error::ok)
				return e;
		}
		for (const frame_range &r : pk->area.runs)
			census_.remove(r);
		packs_.remove_if([pk](const pack &x) { return &x == pk; });
		return error::ok;
	}

	error classify(std::uintptr_t p) const
	{
		for (const pack &pk : packs_) {
			if (p < pk.area.addr || p - pk.area.addr >= pack_size())
				continue;
			auto it = live_.upper_bound(p);
			if (it != live_.begin()) {
				--it;
				if (it->second.pk == &pk && p - it->first < it->second.nbits * prog_chunk)
					return error::interior_pointer;
			}
			return error::not_live;
		}
		for (const auto &[addr, rec] : live_)
			if (!rec.pk && p > addr && p - addr < rec.big.bytes())
				return error::interior_pointer;
		return error::foreign_pointer;
	}

	machine<B> &m_;
	const bpf_prog_pack_config cfg_;
	const linux_version at_;       /* the change point followed */
	const std::uint64_t pack_pages_; /* BPF_PROG_PACK_SIZE in pages */
	mutable std::mutex lock_;       /* pack_mutex; taken before machine::lock */
	std::list<pack> packs_;         /* pack_list, creation order */
	std::map<std::uintptr_t, record> live_;
	frame_census census_;
	call_counts counts_;
	std::uint64_t live_bytes_ = 0, requested_ = 0;
	std::unique_ptr<freetype_pool<B>> pool_; /* last: destroyed after everything it lent is back */
};

static_assert(peer_allocator<bpf_prog_pack_peer<sim_direct_map>>);

}  // namespace ua::peers
