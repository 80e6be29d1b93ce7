// SPDX-License-Identifier: MIT
/*
 * mapping.h - umbrella of the mapping layer (above ds/): the vocabulary of
 * frames and protections, the mapping_backend contract, and the real Linux
 * backend and the memfd_secret backend (secrets out of the running kernel's
 * own direct map). The simulated backend is sim/ (sim.h), the page allocator and the
 * machine that joins it to a backend are phys/ (phys.h).
 */
#pragma once

#include "mapping/types.h"
#include "mapping/text_lines.h"
#include "mapping/memory_map.h"
#include "mapping/backend.h"
#include "mapping/smaps.h"
#include "mapping/alias_table.h"
#include "mapping/linux_contents.h"
#include "mapping/linux_backend.h"
#include "mapping/kernel_direct_map.h"
#include "mapping/secretmem_backend.h"
