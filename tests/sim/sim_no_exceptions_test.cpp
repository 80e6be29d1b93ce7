// SPDX-License-Identifier: MIT
/*
 * The simulated backend compiles and runs with -fno-exceptions: nothing in
 * sim/ throws or catches (allocations are nothrow, failures are -ENOMEM).
 * A plain program (no doctest, which wants exceptions): exit status 0 when
 * every check holds, else the number of the first that failed.
 */
#include <unmapped_alloc/sim/sim_direct_map.h>

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#error "this test must be built with -fno-exceptions"
#endif

int main()
{
	using namespace ua;
	sim_direct_map m(std::uint64_t{1} << 19); /* 2 GiB */
	std::uintptr_t a = 0;
	const frame_range runs[] = {{1000 * 512, 512}, {7 * 512 + 3, 2}};
	if (m.map_alias_runs(runs, 2, prot::rw, &a) != 0)
		return 1;
	if (m.set_memory(a, 514 * page_size, cpa_op::rox) != 0)
		return 2;
	if (m.direct_map_state(7 * 512 + 4) != dm_state::ro)
		return 3;
	if (m.secure_alias(a, 514 * page_size) != 0 || !m.alias_secured(a))
		return 4;
	if (m.set_direct_map_invalid({(std::uint64_t{1} << 18) + 9, 1}) != 0)
		return 5;
	if (m.stats().direct_map_level3_splits != 1)
		return 6;
	if (m.unmap_alias(a, 514 * page_size) != 0 || m.stats().aliases != 0)
		return 7;
	return m.check_consistency().empty() ? 0 : 8;
}
