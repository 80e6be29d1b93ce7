// SPDX-License-Identifier: MIT
/*
 * sim.h - umbrella of the simulated kernel's mapping side (above mapping/):
 * the x86-64 direct map's page tables with CPA's rules, the module area for
 * aliases, and sim_direct_map, the backend that joins them.
 */
#pragma once

#include "mapping.h"
#include "sim/sim_page_tables.h"
#include "sim/sim_module_area.h"
#include "sim/sim_direct_map.h"
