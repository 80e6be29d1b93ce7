// SPDX-License-Identifier: MIT
/*
 * mapping.h - umbrella of the mapping layer (above ds/, beside arena/, below cache/):
 * the page allocator, the backend contract and both backends.
 */
#pragma once

#include "mapping/types.h"
#include "mapping/backend.h"
#include "mapping/page_alloc.h"
#include "mapping/sim_direct_map.h"
#include "mapping/linux_backend.h"
#include "mapping/machine.h"
