// SPDX-License-Identifier: MIT
/*
 * phys.h - umbrella of the physical-memory layer (above mapping/): the page
 * allocator the library sits beside (buddy allocator, pageblocks, ageing,
 * consistency checks) and machine, which joins it to a mapping backend under
 * one lock.
 */
#pragma once

#include "mapping.h"
#include "phys/page_alloc.h"
#include "phys/machine.h"
#include "phys/process_pages.h"
#include "phys/background_load.h"
