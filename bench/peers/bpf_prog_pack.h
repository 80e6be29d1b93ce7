// SPDX-License-Identifier: MIT
/*
 * peers/bpf_prog_pack.h - bpf_prog_pack (kernel/bpf/core.c, 5.18+).
 *
 *   - packs of BPF_PROG_PACK_SIZE = 2 MiB, in a list in creation order
 *     (alloc_new_pack(): list_add_tail()), under one global mutex
 *     (pack_mutex);
 *   - a bitmap per pack with one bit per BPF_PROG_CHUNK_SIZE = 64 bytes;
 *     bpf_prog_pack_alloc() takes the first pack, in list order, where
 *     bitmap_find_next_zero_area(bitmap, BPF_PROG_CHUNK_COUNT, 0, nbits, 0)
 *     finds room: first fit, lowest position, no alignment mask;
 *   - a new pack is filled with INT3 (bpf_fill_ill_insns()) and made
 *     read-only + executable with set_memory_rox() on the whole pack, which
 *     CPA applies to the direct-map alias too (cpa_process_alias(): the
 *     direct map becomes read-only, its NX bit untouched);
 *   - bpf_prog_pack_free() fills the freed range with INT3 through
 *     bpf_arch_text_invalidate() (text_poke_set()), clears its bits, and
 *     frees the pack as soon as it is empty (no spare pack kept), through
 *     vfree() with VM_FLUSH_RESET_PERMS (vm_reset_perms(): direct map
 *     invalid, one flush, default);
 *   - requests larger than a pack take their own page-rounded mapping
 *     (bpf_jit_alloc_exec(round_up(size, PAGE_SIZE)) = module_alloc:
 *     order-0 pages, INT3 fill, set_memory_rox()).
 *
 * Sizes: callers pass the size as the JIT rounds it
 * (round_up(jited_len + header + 16, 64)); the pack rounds to 64 B anyway.
 * Alignment above 64 B is refused: the pack gives 64 B.
 *
 * Where a pack's frames come from (docs/peers.md): 5.18 took them with
 * module_alloc_huge() (huge vmalloc: one order-9 block); after that was
 * reverted, module_alloc()/execmem take 512 order-0 pages, which on a fresh
 * machine come back as one contiguous block anyway. We take one order-9
 * block per pack, so a pack is one alias over contiguous frames.
 */
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <mutex>
#include <vector>

#include "vm_area.h"

namespace ua::peers {

struct bpf_prog_pack_config {
	dm_action action = dm_action::ro; /* set_memory_rox() reaching the direct map */
};

template <mapping_backend B>
class bpf_prog_pack_peer {
public:
	static constexpr const char *name = "bpf-prog-pack";
	static constexpr std::size_t pack_size = chunk_size;                /* BPF_PROG_PACK_SIZE */
	static constexpr std::size_t prog_chunk = 64;                       /* BPF_PROG_CHUNK_SIZE */
	static constexpr std::size_t chunk_count = pack_size / prog_chunk;  /* BPF_PROG_CHUNK_COUNT */

	explicit bpf_prog_pack_peer(machine<B> &m, bpf_prog_pack_config cfg = {}) : m_(m), cfg_(cfg) {}
	bpf_prog_pack_peer(const bpf_prog_pack_peer &) = delete;
	bpf_prog_pack_peer &operator=(const bpf_prog_pack_peer &) = delete;
	~bpf_prog_pack_peer()
	{
		while (!live_.empty())
			must(int(free(live_.begin()->first)), "bpf-prog-pack: release at destruction");
		drain();
	}

	result<std::uintptr_t> alloc(std::size_t size, std::size_t align)
	{
		using res = result<std::uintptr_t>;
		if (error e = check_request(size, align, prog_chunk); e != error::ok)
			return res::failure(e);
		if (pages_of(size) > m_.nr_pages())
			return res::failure(error::too_large);
		std::lock_guard<std::mutex> g(lock_);
		if (size > pack_size) {
			vm_area a;
			{
				std::lock_guard<std::mutex> mg(m_.lock);
				if (error e = vm_area_alloc_locked(m_, pages_of(size), cfg_.action, prot::rx, trap_byte, counts_, a);
				    e != error::ok)
					return res::failure(e);
			}
			for (const vm_run &r : a.runs)
				census_.add(r.frames);
			const std::uintptr_t addr = a.addr();
			live_bytes_ += a.nr_pages << page_shift;
			requested_ += size;
			live_.emplace(addr, record{nullptr, 0, size, std::move(a)});
			return {addr, error::ok};
		}
		const std::size_t nbits = (size + prog_chunk - 1) / prog_chunk;
		pack *pk = nullptr;
		std::size_t pos = chunk_count;
		for (pack &p : packs_) {
			pos = find_zero_area(p.bitmap, nbits);
			if (pos < chunk_count) {
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
		const std::uintptr_t addr = pk->addr + pos * prog_chunk;
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
				std::lock_guard<std::mutex> mg(m_.lock);
				if (error e = vm_area_free_locked(m_, rec.big, cfg_.action, true, counts_); e != error::ok)
					return e;
			}
			for (const vm_run &r : rec.big.runs)
				census_.remove(r.frames);
			live_bytes_ -= rec.big.nr_pages << page_shift;
		} else {
			pack &pk = *rec.pk;
			const std::size_t pos = (p - pk.addr) / prog_chunk;
			{
				/* bpf_arch_text_invalidate(): INT3 over the freed range, through text_poke_set(). */
				std::lock_guard<std::mutex> mg(m_.lock);
				if (m_.backend.fill_frames(pk.frames.pfn, pos * prog_chunk, trap_byte, rec.nbits * prog_chunk) != 0)
					return error::backend_failure;
			}
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

	/* Nothing is cached by design; an empty pack left by a failed release goes now. */
	void drain()
	{
		std::lock_guard<std::mutex> g(lock_);
		for (auto it = packs_.begin(); it != packs_.end();) {
			pack *pk = &*it++;
			if (pk->used == 0)
				(void)free_pack(pk);
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
		s.metadata_bytes = census_.metadata_bytes() + packs_.size() * (sizeof(pack) + chunk_count / 8 + 2 * sizeof(void *)) +
				   live_.size() * map_node_bytes<std::uintptr_t, record>;
		s.dm_changes = counts_.dm_changes;
		s.flushes = counts_.flushes;
		return s;
	}

	std::size_t nr_packs() const
	{
		std::lock_guard<std::mutex> g(lock_);
		return packs_.size();
	}

private:
	struct pack {
		std::uintptr_t addr = 0;
		frame_range frames;
		std::vector<std::uint64_t> bitmap = std::vector<std::uint64_t>(chunk_count / 64);
		std::size_t used = 0;
	};
	struct record {
		pack *pk;      /* nullptr: a request larger than a pack */
		std::size_t nbits;
		std::size_t requested;
		vm_area big;
	};

	/* bitmap_find_next_zero_area(map, chunk_count, 0, nbits, 0): lowest run of nbits clear bits. */
	static std::size_t find_zero_area(const std::vector<std::uint64_t> &map, std::size_t nbits)
	{
		std::size_t i = 0;
		while (i < chunk_count) {
			i = next_bit(map, i, false);
			if (i + nbits > chunk_count)
				return chunk_count;
			const std::size_t end = next_bit(map, i, true);
			if (end - i >= nbits)
				return i;
			i = end;
		}
		return chunk_count;
	}
	/* First index >= from whose bit equals `set`, or chunk_count. */
	static std::size_t next_bit(const std::vector<std::uint64_t> &map, std::size_t from, bool set)
	{
		while (from < chunk_count) {
			std::uint64_t w = set ? map[from >> 6] : ~map[from >> 6];
			w &= ~std::uint64_t{0} << (from & 63);
			if (w)
				return (from & ~std::size_t{63}) + std::size_t(std::countr_zero(w));
			from = (from | 63) + 1;
		}
		return chunk_count;
	}

	/* alloc_new_pack(): frames, INT3 fill, alias, set_memory_rox (direct map ro), one flush. */
	error alloc_new_pack()
	{
		std::lock_guard<std::mutex> mg(m_.lock);
		auto r = m_.pages.alloc_pages(chunk_order, gfp_normal_only);
		if (!r)
			return error::no_memory;
		pack pk;
		pk.frames = {r.value, pages_per_chunk};
		auto undo_frames = [&] {
			UA_CHECK(m_.pages.free_pages(r.value, chunk_order) == error::ok, "bpf-prog-pack: freeing a new pack");
			return error::backend_failure;
		};
		if (m_.backend.fill_frames(pk.frames.pfn, 0, trap_byte, pack_size) != 0)
			return undo_frames();
		if (m_.backend.map_alias(pk.frames, prot::rx, &pk.addr) != 0)
			return undo_frames();
		counts_.dm_changes++;
		if (apply_dm(m_.backend, pk.frames, cfg_.action) != 0) {
			must(m_.backend.unmap_alias(pk.addr, pack_size), "bpf-prog-pack: unmap during rollback");
			return undo_frames();
		}
		counts_.flushes++;
		must(m_.backend.flush_tlb(pk.frames), "bpf-prog-pack: flush of a new pack");
		census_.add(pk.frames);
		packs_.push_back(std::move(pk));
		return error::ok;
	}

	/* list_del() + vfree() with VM_FLUSH_RESET_PERMS. On failure the pack stays, unchanged. */
	error free_pack(pack *pk)
	{
		{
			std::lock_guard<std::mutex> mg(m_.lock);
			counts_.dm_changes++;
			if (m_.backend.set_direct_map_invalid(pk->frames) != 0)
				return error::backend_failure;
			counts_.flushes++;
			must(m_.backend.flush_tlb(pk->frames), "bpf-prog-pack: flush of a pack it holds");
			counts_.dm_changes++;
			if (m_.backend.set_direct_map_default(pk->frames) != 0) {
				counts_.dm_changes++;
				must(apply_dm(m_.backend, pk->frames, cfg_.action), "bpf-prog-pack: re-apply during rollback");
				return error::backend_failure;
			}
			must(m_.backend.unmap_alias(pk->addr, pack_size), "bpf-prog-pack: unmap of a pack it mapped");
			UA_CHECK(m_.pages.free_pages(pk->frames.pfn, chunk_order) == error::ok, "bpf-prog-pack: freeing a pack");
		}
		census_.remove(pk->frames);
		packs_.remove_if([pk](const pack &x) { return &x == pk; });
		return error::ok;
	}

	error classify(std::uintptr_t p) const
	{
		for (const pack &pk : packs_) {
			if (p < pk.addr || p - pk.addr >= pack_size)
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
			if (!rec.pk && p > addr && p - addr < (rec.big.nr_pages << page_shift))
				return error::interior_pointer;
		return error::foreign_pointer;
	}

	machine<B> &m_;
	const bpf_prog_pack_config cfg_;
	mutable std::mutex lock_; /* pack_mutex; taken before machine::lock */
	std::list<pack> packs_;   /* pack_list, creation order */
	std::map<std::uintptr_t, record> live_;
	frame_census census_;
	call_counts counts_;
	std::uint64_t live_bytes_ = 0, requested_ = 0;
};

static_assert(peer_allocator<bpf_prog_pack_peer<sim_direct_map>>);

}  // namespace ua::peers
