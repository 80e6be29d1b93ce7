#!/usr/bin/env python3
"""recorded_table.py - the "A recorded run" table of docs/benchmarks.md from a report's summary.json.

    scripts/recorded_table.py REPORT_DIR        (prints the table and the goal count)

One row per (machine, workload) in summary.json's order, one column per design
in the order the designs first appear; the peers' NAME@X.Y rows (older kernel
releases) are left out, as the table shows each peer at its newest release.
Each cell: the medians over the seeds of peak_chunks / splits_2m / splits_1g;
"F" when some seed had failed allocations; "n/a" when the design does not
serve the workload. LB is the median of lower_bound_chunks over the group's
seeds (the same for every design of a row).
"""
import json
import os
import sys

CELL = ("peak_chunks", "splits_2m", "splits_1g")


def num(v):
    if v is None:
        return "-"
    return str(int(v)) if float(v).is_integer() else "{:g}".format(v)


def esc(s):
    return s.replace("_", "\\_")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: recorded_table.py REPORT_DIR")
    with open(os.path.join(sys.argv[1], "summary.json")) as f:
        s = json.load(f)
    groups = [g for g in s["groups"] if "@" not in g["allocator"]]
    designs, rows, cells = [], [], {}
    for g in groups:
        if g["allocator"] not in designs:
            designs.append(g["allocator"])
        key = (g["machine"], g["workload"])
        if key not in cells:
            rows.append(key)
            cells[key] = {"lb": None}
        fig = g["figures"]
        if g["ran"] == 0:
            cells[key][g["allocator"]] = "n/a"
            continue
        lb = fig.get("lower_bound_chunks")
        if lb and lb["n"] and cells[key]["lb"] is None:
            cells[key]["lb"] = lb["median"]
        text = " / ".join(num(fig[c]["median"]) if fig[c]["n"] else "-" for c in CELL)
        if g.get("failed_runs", 0):
            text += " F"
        cells[key][g["allocator"]] = text
    print("| machine | workload | LB | " + " | ".join(designs) + " |")
    print("| --- | --- | ---: | " + " | ".join("---:" for _ in designs) + " |")
    for key in rows:
        c = cells[key]
        print("| {} | {} | {} | {} |".format(key[0], esc(key[1]), num(c["lb"]),
                                            " | ".join(c.get(d, "n/a") for d in designs)))
    goals = s.get("goals", [])
    print("\ngoals: {} of {} met".format(sum(1 for g in goals if g["met"]), len(goals)))
    for g in goals:
        if not g["met"]:
            print("  missed: {} on {} {}: {}".format(g["goal"], g["machine"], g["workload"], g["figure"]))


if __name__ == "__main__":
    main()
