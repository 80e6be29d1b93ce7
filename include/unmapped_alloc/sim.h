// SPDX-License-Identifier: MIT
/*
 * sim.h - umbrella of the simulated kernel's mapping side (above mapping/):
 * what kernel it is (sim_config.h), the boot direct map x86 builds from a
 * memory map (sim_boot_map.h), the direct map's page tables with CPA's rules
 * (sim_page_tables.h), the module area for aliases, and sim_direct_map, the
 * backend that joins them, with set_memory_*() and alias processing
 * (sim_cpa.h).
 */
#pragma once

#include "mapping.h"
#include "sim/sim_config.h"
#include "sim/sim_boot_map.h"
#include "sim/sim_page_tables.h"
#include "sim/sim_module_area.h"
#include "sim/sim_direct_map.h"
