// SPDX-License-Identifier: MIT
/*
 * workload.h - the workload layer in one include.
 *
 * Bottom-up: op.h (the operation model and validator), text.h and random.h
 * (helpers), the readers (listing.h for lsmod and /proc/modules, bpftool.h
 * for `bpftool prog show`, trace.h for the trace format) and the generators
 * (bpf_churn.h, module_churn.h, secretmem_churn.h, sockex1.h). Nothing here
 * depends on the allocator; docs/workloads.md describes every piece.
 */
#pragma once

#include "workload/op.h"
#include "workload/listing.h"
#include "workload/bpftool.h"
#include "workload/trace.h"
#include "workload/bpf_churn.h"
#include "workload/module_churn.h"
#include "workload/secretmem_churn.h"
#include "workload/sockex1.h"
