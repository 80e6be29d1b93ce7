// SPDX-License-Identifier: MIT
/* ds.h - umbrella of the data-structure layer (the bottom layer: no other layer below it). */
#pragma once

#include "ds/bitmap.h"
#include "ds/chunk_table.h"
#include "ds/tree_descend.h"
#include "ds/extent_bucket.h"
#include "ds/extent_tree.h"
#include "ds/node_pool.h"
#include "ds/striped_counter.h"
#include "ds/thread_number.h"
#include "ds/mutex.h"
