// SPDX-License-Identifier: MIT
/*
 * phys/page_alloc_pcp.h - the per-CPU page lists (struct per_cpu_pages):
 * refilled from the buddy lists in batches (rmqueue_bulk()), fed by frees
 * (free_frozen_page_commit()), drained back past pcp->high
 * (free_pcppages_bulk()). Included at the end of page_alloc.h.
 *
 * pcp->high stays at high_min (zone_highsize() of the low watermark): the
 * kernel's auto-tuning towards high_max (decay_pcp_high(), ZONE_BELOW_HIGH)
 * is not modelled, nor PCPF_FREE_HIGH_BATCH.
 */
#pragma once

#include "page_alloc.h"

namespace ua {

/* nr_pcp_alloc(): batch, doubled per consecutive order-0 refill (alloc_factor), scaled down by order. */
inline int page_allocator::nr_pcp_alloc(pcp_t &pcp, unsigned order) noexcept
{
	const int high = pcp.high, base_batch = pcp.batch;
	if (high < base_batch)
		return 1;
	int batch = order ? base_batch : base_batch << pcp.alloc_factor;
	if (!order) {
		const int max_nr_alloc = std::max(high - pcp.count - base_batch, base_batch);
		if (batch <= max_nr_alloc && pcp.alloc_factor < detail::pa::pcp_batch_scale_max)
			pcp.alloc_factor++;
		batch = std::min(batch, max_nr_alloc);
	}
	if (batch > 1)
		batch = std::max(batch >> order, 2);
	return batch;
}

/* rmqueue_bulk(): up to count blocks from __rmqueue(), each to the tail of the list (physical order). */
inline int page_allocator::rmqueue_bulk(zone_t &z, unsigned order, int count, list_head &list, unsigned mt,
					unsigned alloc_flags) noexcept
{
	rmqueue_mode mode = rmqueue_mode_normal;
	int i = 0;
	for (; i < count; i++) {
		const pfn_t p = rmqueue_fallbacks(z, order, mt, alloc_flags, mode);
		if (p == detail::pa::no_page)
			break;
		state_[p] = detail::pa::make_state(detail::pa::fk_pcp, order);
		list_add_tail(list, std::uint32_t(p));
	}
	return i;
}

/* rmqueue_pcplist() + __rmqueue_pcplist(): the first page of this CPU's list, refilling it when empty. */
inline pfn_t page_allocator::rmqueue_pcplist(zone_t &z, unsigned order, unsigned mt, unsigned alloc_flags) noexcept
{
	pcp_t &pcp = z.pcp[cpu_];
	pcp.free_count >>= 1;
	list_head &list = pcp.lists[detail::pa::order_to_pindex(mt, order)];
	if (list.empty()) {
		const int batch = nr_pcp_alloc(pcp, order);
		const int alloced = rmqueue_bulk(z, order, batch, list, mt, alloc_flags);
		pcp.count += alloced << order;
		if (list.empty())
			return detail::pa::no_page;
	}
	const pfn_t p = list.first;
	list_del(list, std::uint32_t(p));
	pcp.count -= 1 << order;
	return p;
}

/*
 * free_pcppages_bulk(): count pages back to the buddy lists, round-robin
 * over the lists starting with pindex, each list from its tail (the
 * coldest page), each page to its pageblock's type.
 */
inline void page_allocator::free_pcppages_bulk(zone_t &z, int count, pcp_t &pcp, unsigned pindex) noexcept
{
	count = std::min(pcp.count, count);
	int pi = int(pindex) - 1; /* "Ensure requested pindex is drained first" */
	while (count > 0) {
		do {
			if (++pi > int(detail::pa::nr_pcp_lists) - 1)
				pi = 0;
		} while (pcp.lists[unsigned(pi)].empty());
		list_head &list = pcp.lists[unsigned(pi)];
		const unsigned order = detail::pa::pindex_to_order(unsigned(pi));
		const int nr_pages = 1 << order;
		do {
			const pfn_t p = list.last;
			list_del(list, std::uint32_t(p));
			count -= nr_pages;
			pcp.count -= nr_pages;
			state_[p] = detail::pa::make_state(detail::pa::fk_free_tail, 0);
			free_one_page(z, p, order, pb_mt_[p >> pageblock_order], false);
		} while (count > 0 && !list.empty());
	}
}

/*
 * free_frozen_page_commit(): to the head of this CPU's list; past
 * pcp->high, nr_pcp_free() pages go back (at least batch, more after many
 * consecutive frees); "free_high" drains harder after consecutive
 * high-order frees.
 */
inline void page_allocator::free_frozen_page_commit(zone_t &z, pcp_t &pcp, pfn_t pfn, unsigned mt, unsigned order) noexcept
{
	using detail::pa::pcp_batch_scale_max;
	pcp.alloc_factor >>= 1;
	const unsigned pindex = detail::pa::order_to_pindex(mt, order);
	state_[pfn] = detail::pa::make_state(detail::pa::fk_pcp, order);
	list_add(pcp.lists[pindex], std::uint32_t(pfn));
	pcp.count += 1 << order;
	const int batch = pcp.batch;
	bool free_high = false;
	if (order && order <= page_alloc_costly_order) {
		free_high = pcp.free_count >= batch + pcp.high / 2 && pcp.prev_free_high_order;
		pcp.prev_free_high_order = true;
	} else {
		pcp.prev_free_high_order = false;
	}
	if (pcp.free_count < (batch << pcp_batch_scale_max))
		pcp.free_count += 1 << order;
	/* nr_pcp_high() with high_min == high_max */
	const int high = (!pcp.high || free_high) ? 0 : pcp.high;
	if (pcp.count < high)
		return;
	/* nr_pcp_free() */
	int to_free;
	if (free_high)
		to_free = std::min(pcp.count, batch << pcp_batch_scale_max);
	else if (high < batch)
		to_free = 1;
	else
		to_free = std::clamp(pcp.free_count, batch, std::max(batch, high - batch));
	free_pcppages_bulk(z, to_free, pcp, pindex);
}

/* drain_pages_zone(): everything, batch << CONFIG_PCP_BATCH_SCALE_MAX at a time. */
inline void page_allocator::drain_pages_zone(zone_t &z, pcp_t &pcp) noexcept
{
	while (pcp.count > 0)
		free_pcppages_bulk(z, std::min(pcp.count, pcp.batch << detail::pa::pcp_batch_scale_max), pcp, 0);
}

inline void page_allocator::drain_all_pages()
{
	for (zone_t &z : zones_)
		for (pcp_t &pcp : z.pcp)
			drain_pages_zone(z, pcp);
}

}  // namespace ua
