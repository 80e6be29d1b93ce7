// SPDX-License-Identifier: MIT
/*
 * validation/sim_machine.h - a simulated machine built like a real one: its
 * memory map (holes and all), the kernel release it runs, and its ageing.
 *
 * The direct map comes from the memory map as x86 builds it at boot
 * (sim_direct_map over sim/sim_boot_map.h's init_mem_mapping()), and the
 * page allocator frees only its RAM, never a hole (the 32-bit PCI window,
 * page 0, the legacy 640 KiB - 1 MiB), as memblock_free_all() does. The
 * page allocator runs the kernel's watermarks on the machine's CPUs
 * (page_alloc_config: min_free_kbytes_auto, nr_cpus).
 *
 * `aged` runs the page allocator's ageing model (phys/page_age.h) once;
 * the measurements' own procedure, page cache read into memory, is
 * page_cache.h.
 */
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <unmapped_alloc/phys.h>
#include <unmapped_alloc/sim.h>

namespace ua::validation {

using sim_machine = machine<sim_direct_map>;

/* A page allocator set up as the kernel sets its own: calculate_min_free_kbytes() watermarks, nr_cpus CPUs. */
inline page_alloc_config kernel_page_alloc(unsigned nr_cpus)
{
	page_alloc_config c;
	c.min_free_kbytes = min_free_kbytes_auto;
	c.nr_cpus = nr_cpus;
	return c;
}

struct sim_machine_spec {
	memory_map map;        /* RAM and holes */
	sim_config kernel;     /* release, gbpages */
	bool aged = false;
	age_config ageing;     /* used when aged */
	page_alloc_config pages = kernel_page_alloc(2); /* watermarks as the kernel sets them, its CPUs */
};

struct sim_machine_build {
	std::unique_ptr<sim_machine> m;
	std::uint64_t hole_pages = 0; /* frames below max_pfn that are not RAM, kept out of the allocator */
	std::string error;            /* empty: built */
};

inline sim_machine_build build_sim_machine(const sim_machine_spec &s)
{
	sim_machine_build b;
	const std::uint64_t n = s.map.end_pfn();
	if (n == 0) {
		b.error = "the memory map has no RAM";
		return b;
	}
	/* The page allocator frees only the map's RAM (memblock_free_all()); the direct map maps it as x86 boot does. */
	b.m = std::make_unique<sim_machine>(s.map, s.pages, s.kernel);
	b.hole_pages = n - s.map.ram_pages();
	if (s.aged) {
		auto a = b.m->with_lock([&](page_allocator &pa, auto &) { return pa.age(s.ageing); });
		if (!a.ok()) {
			b.error = std::string("ageing failed: ") + describe(a.err);
			b.m.reset();
		}
	}
	return b;
}

}  // namespace ua::validation
