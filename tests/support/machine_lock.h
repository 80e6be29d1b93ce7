// SPDX-License-Identifier: MIT
#pragma once
/*
 * support/machine_lock.h - tests that look at a machine's page allocator
 * between operations take its lock as the library does: machine::pages is
 * UA_GUARDED_BY(machine::lock), so clang's -Wthread-safety checks the tests
 * too. Longer inspections hold `typename M::guard g(m.lock)` in a block of
 * their own; the one-call reads the tests make most often live here.
 */

#include <unmapped_alloc/phys.h>

namespace ua_test {

/* page_allocator::allocated_order() of the block at pfn, under the machine lock. */
template <class Machine>
ua::result<unsigned> allocated_order(Machine &m, ua::pfn_t pfn) UA_EXCLUDES(m.lock)
{
	typename Machine::guard g(m.lock);
	return m.pages.allocated_order(pfn);
}

/* page_allocator::zone_of() of pfn, under the machine lock. */
template <class Machine>
ua::zone_type zone_of(Machine &m, ua::pfn_t pfn) UA_EXCLUDES(m.lock)
{
	typename Machine::guard g(m.lock);
	return m.pages.zone_of(pfn);
}

}  // namespace ua_test
