// SPDX-License-Identifier: MIT
/*
 * Shared pieces of the tests of bench/validation: the small simulated
 * machine the page cache and replay tests run on.
 */
#pragma once

#include <doctest/doctest.h>

#include <utility>

#include "validation/sim_machine.h"

namespace ua_test {

/* A fresh 2 GiB x86 VM as the kernel boots it (build_sim_machine()): its watermarks, 2 CPUs. */
inline ua::validation::sim_machine_build small_machine()
{
	auto mm = ua::memory_map::x86_vm(2 * (ua::pud_size / ua::page_size));
	REQUIRE(mm.ok());
	ua::validation::sim_machine_build b = ua::validation::build_sim_machine(
		{std::move(mm.value), ua::sim_config{}, false, {}, ua::validation::kernel_page_alloc(2)});
	REQUIRE(b.error.empty());
	return b;
}

}  // namespace ua_test
