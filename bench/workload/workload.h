// SPDX-License-Identifier: MIT
/*
 * workload.h - the workload layer in one include.
 *
 * Bottom-up: op.h (the operation model and validator), stream.h (workloads
 * as streams), text.h, random.h and timeline.h (helpers), the readers
 * (listing.h for lsmod and /proc/modules, bpftool.h for `bpftool prog show`,
 * trace.h for the trace format), the count-driven generators (bpf_churn.h,
 * module_churn.h, secretmem_churn.h, sockex1.h) and the timed ones
 * (vm_host.h, bpf_fleet.h, tracing_host.h, uptime.h, colocation.h). Nothing
 * here depends on the allocator; docs/workloads.md describes every piece.
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
#include "workload/stream.h"
#include "workload/vm_host.h"
#include "workload/bpf_fleet.h"
#include "workload/tracing_host.h"
#include "workload/module_uptime.h"
#include "workload/uptime.h"
#include "workload/colocation.h"
