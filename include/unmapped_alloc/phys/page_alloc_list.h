// SPDX-License-Identifier: MIT
/*
 * phys/page_alloc_list.h - include/linux/list.h over frame numbers: the
 * free and per-CPU lists link frames through page_allocator's next_/prev_
 * arrays, as the kernel links struct pages through page->lru. Included at
 * the end of page_alloc.h.
 */
#pragma once

#include "page_alloc.h"

namespace ua {

/* list_add(): at the head, where list_first_entry() finds it next. */
inline void page_allocator::list_add(list_head &h, std::uint32_t p) noexcept
{
	prev_[p] = detail::pa::nil;
	next_[p] = h.first;
	if (h.first != detail::pa::nil)
		prev_[h.first] = p;
	else
		h.last = p;
	h.first = p;
}

/* list_add_tail() */
inline void page_allocator::list_add_tail(list_head &h, std::uint32_t p) noexcept
{
	next_[p] = detail::pa::nil;
	prev_[p] = h.last;
	if (h.last != detail::pa::nil)
		next_[h.last] = p;
	else
		h.first = p;
	h.last = p;
}

/* list_del() */
inline void page_allocator::list_del(list_head &h, std::uint32_t p) noexcept
{
	const std::uint32_t n = next_[p], pr = prev_[p];
	if (pr != detail::pa::nil)
		next_[pr] = n;
	else
		h.first = n;
	if (n != detail::pa::nil)
		prev_[n] = pr;
	else
		h.last = pr;
}

}  // namespace ua
