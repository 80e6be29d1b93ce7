#!/usr/bin/env python3
"""findings.py - docs/findings.md from a ua-replay report's summary.json.

    scripts/findings.py REPORT_DIR [OUT.md] [--live LIVE.json]
                                        (default OUT: REPORT_DIR/findings.md)

Run by scripts/main.sh after `ua-replay --default --report report/`. For each
workload class (BPF, modules, secrets, VM host, co-location) and machine: the
design that splits fewest 2 MiB and 1 GiB pages and the one that holds fewest
chunks at the peak, each as median (min-max) over the seeds, the library's
ratio to it seed by seed, and whether the two differ by the no-overlap rule
(ranges that overlap are "the same within the seeds"); the cost beside it
(ns per op, metadata bytes). Every figure names the command and the table it
comes from (summary.md, one section per machine and workload).

With --live (scripts/main.sh passes report/live.json when this run made the
live runs, after them): what the running kernel's own designs did to its
direct map on the same kinds of workload, from `ua-live --default`.
"""
import json
import os
import sys

CLASSES = [
    ("BPF programs", ("bpf-churn", "bpftool", "sockex1", "tracing-host", "bpf-fleet", "trace")),
    ("Module text", ("modules", "uptime")),
    ("Secret memory", ("secretmem",)),
    ("VM host guest memory", ("vm-host", "vm-host-2m")),
    ("Co-location", ("colocation",)),
]


def rng(f, fmt="{:.0f}"):
    if not f or f["n"] == 0:
        return "-"
    one = lambda v: "inf" if v is None else fmt.format(v)
    if f["min"] == f["max"]:
        return one(f["median"])
    return "{} ({}-{})".format(one(f["median"]), one(f["min"]), one(f["max"]))


def anchor(machine, workload):
    # GitHub-style anchor of the "### workload" heading in summary.md
    a = workload.lower()
    return "".join(c for c in a if c.isalnum() or c in "-_ ").replace(" ", "-")


def failed(g):
    return g.get("failed_runs", 0) > 0


def candidates(groups, fig=None):
    """The groups that ran (with figure fig); those without failed allocations when there are any:
    a design that failed to serve the workload is never the best while one that served it exists."""
    ran = [g for g in groups if g["ran"] > 0 and (fig is None or g["figures"][fig]["n"] > 0)]
    served = [g for g in ran if not failed(g)]
    return served or ran


def name(g):
    return g["allocator"] + (" (F)" if failed(g) else "")


def best(groups, fig):
    ran = candidates(groups, fig)
    if not ran:
        return None
    return min(ran, key=lambda g: (g["figures"][fig]["median"], g["figures"][fig]["max"]))


def live_section(path):
    """The live runs of ua-live's JSON (a list of runs, each with its "kernel" object): one row per run."""
    with open(path) as f:
        runs = json.load(f)
    if not isinstance(runs, list):
        raise ValueError("{}: not a list of runs".format(path))
    L = ["## What the running kernel showed", "",
         "From [live.md](../report/live.md) (`ua-live --default`, docs/live.md): the running kernel's own "
         "designs as it ships them (bpf_prog_pack for BPF programs, secretmem for memfd_secret), on the machine "
         "as found. The counters are the kernel's (/proc/vmstat, /proc/meminfo) and global, and a split page "
         "stays split until reboot, so each figure is the delta over one run and says what this kernel did at "
         "that moment (a machine already split since boot splits less: the splits at the start of each run are "
         "beside it), not a seed-by-seed comparison. The library and the other peers have no live form here: "
         "their figures are the simulated ones above; the simulation beside the live figures is "
         "docs/validation.md.", "",
         "| workload | machine | kernel design | L2 splits | L3 splits | DirectMap4k kB | at start: L2/L3 splits | note |",
         "| --- | --- | --- | ---: | ---: | ---: | --- | --- |"]
    for r in runs:
        k = r.get("kernel", {})
        design = k.get("design", r.get("allocator", "-"))
        if "skipped" in k:
            L.append("| {} | {} | {} | - | - | - | - | skipped: {} |".format(r.get("workload", "-"), r.get("machine", "-"),
                                                                        design, k["skipped"]))
            continue
        d = k.get("delta_after", {})
        c = k.get("state_at_start", {}).get("counters", {})
        start = "{}/{}".format(c.get("direct_map_level2_splits", "-"), c.get("direct_map_level3_splits", "-"))
        note = "stopped: " + k["stopped_by"] if k.get("stopped_by") else "{} of {} ops".format(
            k.get("ops_done", "-"), k.get("ops", "-"))
        L.append("| {} | {} | {} | {:+d} | {:+d} | {:+d} | {} | {} |".format(
            r.get("workload", "-"), r.get("machine", "-"), design, d.get("level2_splits", 0),
            d.get("level3_splits", 0), d.get("directmap_4k_kb", 0), start, note))
    return L + [""]


def main():
    args = sys.argv[1:]
    live = None
    if "--live" in args:
        i = args.index("--live")
        if i + 1 >= len(args):
            sys.exit("findings.py: --live needs a file")
        live = args[i + 1]
        del args[i:i + 2]
    if not args:
        sys.exit("usage: findings.py REPORT_DIR [OUT.md] [--live LIVE.json]")
    rep = args[0]
    out = args[1] if len(args) > 1 else os.path.join(rep, "findings.md")
    with open(os.path.join(rep, "summary.json")) as f:
        s = json.load(f)
    cmd = s["command"]
    groups = s["groups"]
    by = {}
    for g in groups:
        by.setdefault((g["machine"], g["workload"]), []).append(g)
    L = ["# Findings", "",
         "Generated by `scripts/findings.py` (scripts/main.sh runs it on the default comparison) from the report of `{}`; "
         "each figure is the median (min-max) over the seeds, from the section of "
         "[summary.md](../report/summary.md) the link names. Two designs are called different only "
         "when their ranges over the seeds do not overlap. (F): some seed of the design had failed "
         "allocations; such a design is named best only when every design failed.".format(cmd), ""]
    goals = s.get("goals", [])
    missed = [g for g in goals if not g["met"]]
    L += ["Goals: {} of {} met.".format(len(goals) - len(missed), len(goals))]
    for g in missed:
        L.append("- MISSED {} on {} {}: {}".format(g["goal"], g["machine"], g["workload"], g["figure"]))
    L.append("")
    for title, kinds in CLASSES:
        keys = [k for k in by if by[k][0]["workload_kind"] in kinds]
        if not keys:
            continue
        L += ["## " + title, "",
              "| machine | workload | fewest 2 MiB splits | fewest 1 GiB splits | fewest peak chunks | "
              "library: 2M / 1G splits, peak chunks | library vs best (chunks ratio, verdict) | cost: library vs best, ns/op, metadata B |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for k in keys:
            gs = by[k]
            lib = next((g for g in gs if g["library"] and g["ran"] > 0), None)
            link = "[{}](../report/summary.md#{})".format(k[1], anchor(*k))
            cells = []
            for fig in ("splits_2m", "splits_1g", "peak_chunks"):
                b = best(gs, fig)
                ties = [name(g) for g in candidates(gs, fig) if b
                        and not (g["figures"][fig]["min"] > b["figures"][fig]["max"])]
                cells.append("-" if not b else "{} {}".format("/".join(ties), rng(b["figures"][fig])))
            if lib:
                libcell = "{} / {}, {}{}".format(rng(lib["figures"]["splits_2m"]), rng(lib["figures"]["splits_1g"]),
                                                 rng(lib["figures"]["peak_chunks"]), " (F)" if failed(lib) else "")
                others = candidates([g for g in gs if not g["library"]])
                b = min(others, key=lambda g: g["figures"]["peak_chunks"]["median"]) if others else None
                if b and failed(b):
                    vs, cost = "no peer ran without failed allocations", "-"
                elif b and b["allocator"] in lib.get("versus", {}):
                    v = lib["versus"][b["allocator"]]["peak_chunks"]
                    vs = "{}: {}, {}".format(name(b), rng(v["ratio"], "{:.2f}"), v["verdict"])
                    cost = "{} vs {}, {} vs {}".format(rng(lib["figures"]["ns_per_op"]), rng(b["figures"]["ns_per_op"]),
                                                       rng(lib["figures"]["metadata_bytes"]),
                                                       rng(b["figures"]["metadata_bytes"]))
                else:
                    vs, cost = "-", "-"
            else:
                libcell, vs, cost = "not run", "-", "-"
            L.append("| {} | {} | {} | {} | {} | {} | {} | {} |".format(k[0], link, *cells, libcell, vs, cost))
        L.append("")
    if live:
        try:
            L += live_section(live)
        except (OSError, ValueError, KeyError, TypeError) as e:
            sys.exit("findings.py: the live runs cannot be read: {}".format(e))
    L += ["## Not measured here", "",
          "- Which of the library's proposals (placement hints, collapse on restore, spare chunks) carry each "
          "result: the report runs the library in one configuration; no run switches one proposal off."]
    if not live:
        L.append("- What the running kernel did: this report was made without the live runs (`UA_LIVE=0`, or "
                 "findings.py run without --live); `ua-live` writes report/live.md (docs/live.md).")
    L.append("")
    with open(out, "w") as f:
        f.write("\n".join(L))
    print("findings: " + out)


if __name__ == "__main__":
    main()
