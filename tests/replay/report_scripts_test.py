#!/usr/bin/env python3
"""The report scripts (scripts/findings.py, scripts/recorded_table.py) on a made-up summary.json.

    report_scripts_test.py SCRIPTS_DIR

One VM-host row where the peer with the fewest chunks failed allocations and
the library did not: findings.py must name the library best and mark the
peer (F), and with --live fold in the live runs (refusing a malformed file);
recorded_table.py must print the medians, F and n/a.
"""
import json
import os
import subprocess
import sys
import tempfile


def fig(v, n=2):
    return {"median": v, "min": v, "max": v, "n": n}


def group(alloc, lib, peak, s2m, s1g, failed=0, ran=2):
    figs = {"peak_chunks": fig(peak), "splits_2m": fig(s2m), "splits_1g": fig(s1g),
            "lower_bound_chunks": fig(100), "ns_per_op": fig(10), "metadata_bytes": fig(5)}
    if ran == 0:
        figs = {k: {"median": None, "min": None, "max": None, "n": 0} for k in figs}
    g = {"machine": "sim-256g-aged", "workload": "vm-host-2m", "workload_kind": "vm-host-2m", "backend": "sim",
         "allocator": alloc, "release": "6.18", "library": lib, "seeds": 2, "ran": ran, "failed_runs": failed,
         "figures": figs}
    if lib:
        g["versus"] = {"guest-memfd": {"peak_chunks": {"ratio": fig(1.2), "verdict": "more"}}}
    return g


def main():
    scripts = sys.argv[1]
    summary = {"command": "ua-replay --test", "groups": [
        group("unmapped", True, 100, 0, 3),
        group("guest-memfd", False, 80, 0, 3, failed=2),
        group("jemalloc", False, 120, 0, 4, failed=1),
        group("bpf-prog-pack", False, 0, 0, 0, ran=0),
        group("jemalloc@6.1", False, 1, 0, 0, failed=1),  # an older release: in findings, not in the table
    ], "goals": [{"goal": "G3 peak", "machine": "sim-256g-aged", "workload": "vm-host-2m", "met": True,
                  "seeds": 2, "seeds_met": 2, "figure": "x"}]}
    bad = []
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "summary.json"), "w") as f:
            json.dump(summary, f)
        out = os.path.join(d, "findings.md")
        subprocess.run([sys.executable, os.path.join(scripts, "findings.py"), d, out], check=True,
                       stdout=subprocess.DEVNULL)
        row = next(l for l in open(out) if "vm-host-2m](" in l)
        cells = [c.strip() for c in row.split("|")[1:-1]]
        # fewest peak chunks: the library (100), not the peers that failed (80, 1)
        if not cells[4].startswith("unmapped 100"):
            bad.append("fewest peak chunks names " + cells[4])
        if "no peer ran without failed allocations" not in cells[6]:
            bad.append("library vs best: " + cells[6])
        if "Goals: 1 of 1 met." not in open(out).read():
            bad.append("goal count")
        if "made without the live runs" not in open(out).read():
            bad.append("without --live, findings must say the live runs are not in it")
        # --live: one row per live run, a skipped run with its reason; a live file that is not a list is refused
        live = os.path.join(d, "live.json")
        with open(live, "w") as f:
            json.dump([{"workload": "bpf-fill:1", "machine": "kernel-fresh", "kernel": {
                "design": "bpf_prog_pack", "delta_after": {"level2_splits": 13, "level3_splits": 2,
                                                           "directmap_4k_kb": 26624}, "ops": 2048, "ops_done": 2048,
                "state_at_start": {"counters": {"direct_map_level2_splits": 48, "direct_map_level3_splits": 0}}}},
                       {"workload": "modules", "machine": "kernel-fresh", "kernel": {
                           "design": "execmem", "skipped": "no loadable modules"}}], f)
        subprocess.run([sys.executable, os.path.join(scripts, "findings.py"), d, out, "--live", live], check=True,
                       stdout=subprocess.DEVNULL)
        text = open(out).read()
        if "| bpf-fill:1 | kernel-fresh | bpf_prog_pack | +13 | +2 | +26624 | 48/0 | 2048 of 2048 ops |" not in text:
            bad.append("live row missing")
        if "| modules | kernel-fresh | execmem | - | - | - | - | skipped: no loadable modules |" not in text:
            bad.append("skipped live row missing")
        if "made without the live runs" in text:
            bad.append("with --live, findings still says the live runs are not in it")
        with open(live, "w") as f:
            json.dump({"not": "a list"}, f)
        r = subprocess.run([sys.executable, os.path.join(scripts, "findings.py"), d, out, "--live", live],
                           capture_output=True, text=True)
        if r.returncode == 0 or "live runs cannot be read" not in r.stderr:
            bad.append("a malformed live file was not refused: " + r.stderr.strip())
        t = subprocess.run([sys.executable, os.path.join(scripts, "recorded_table.py"), d], check=True,
                           capture_output=True, text=True).stdout
        lines = t.splitlines()
        if lines[0] != "| machine | workload | LB | unmapped | guest-memfd | jemalloc | bpf-prog-pack |":
            bad.append("table header: " + lines[0])
        want = "| sim-256g-aged | vm-host-2m | 100 | 100 / 0 / 3 | 80 / 0 / 3 F | 120 / 0 / 4 F | n/a |"
        if want not in lines:
            bad.append("table row: " + " / ".join(lines[2:3]))
        if "goals: 1 of 1 met" not in t:
            bad.append("table goals")
    for b in bad:
        print("FAIL: " + b)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
