// SPDX-License-Identifier: MIT
/* cache.h - umbrella of the cache layer (above arena/, phys/ and sim/; below the public API). */
#pragma once

#include "arena.h"
#include "phys.h"
#include "sim.h"
#include "cache/cache_config.h"
#include "cache/rcu.h"
#include "cache/shrinker.h"
#include "cache/chunk_run.h"
#include "cache/chunk_migrate.h"
#include "cache/chunk_source.h"
#include "cache/chunk_registry.h"
#include "cache/large_runs.h"
#include "cache/unmapped_cache.h"
#include "cache/cache_stats.h"
#include "cache/handle.h"
#include "cache/secret_allocator.h"
