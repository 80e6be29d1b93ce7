// SPDX-License-Identifier: MIT
/* arena.h - umbrella of the arena layer (above ds/; below cache/). */
#pragma once

#include "ds.h"
#include "arena/arena.h"
