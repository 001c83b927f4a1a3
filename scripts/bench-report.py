#!/usr/bin/python3
"""Turns the fio JSON files of scripts/bench.sh into its table, results.json
and chart.

    bench-report.py brief RAW.json     one line for the progress output
    bench-report.py report DIR         DIR/raw/roundR-SERVER-WORKLOAD.json + DIR/meta.json
                                       -> DIR/results.json, DIR/table.md, DIR/chart.png,
                                          and the table on stdout

Figures per fio run (one JSON, `--group_reporting`, so one job entry even
with --numjobs=8): MB/s = bw_bytes / 10^6, IOPS, and the completion-latency
percentiles p50/p99 (fio's clat_ns percentiles, the time from submission to
the reply; at QD1 that is the round trip). Reads or writes, whichever the
workload does. Per server and workload the report takes the median over
rounds of each figure separately; nbdboot's ratio to a peer is
median(nbdboot) / median(peer) of the headline figure (MB/s for sequential
workloads, IOPS for random ones). The issue 4 targets are checked against
the ratios: every workload >= 1.0x nbdkit and >= 1.3x nbd-server and
qemu-nbd, randread-8c >= 1.2x nbdkit.
"""
import json
import os
import re
import statistics
import sys

SERVERS = ["nbdboot", "nbdkit", "nbd-server", "qemu-nbd"]
RAW_NAME = re.compile(r"^round(\d+)-(nbdboot|nbdkit|nbd-server|qemu-nbd)-(.+)\.json$")


def target(workload, peer):
    if peer == "nbdkit":
        return 1.2 if workload == "randread-8c" else 1.0
    return 1.3


def metric_of(workload):
    return "MB/s" if workload.startswith("seq") else "IOPS"


def figures(path):
    """The figures of one fio JSON output file (raises ValueError if fio failed)."""
    with open(path) as f:
        data = json.load(f)
    jobs = data.get("jobs") or []
    if not jobs:
        raise ValueError(f"{path}: no jobs in fio's output")
    job = jobs[0]
    if job.get("error"):
        raise ValueError(f"{path}: fio reported error {job['error']}")
    side = job["write"] if job["write"].get("io_bytes", 0) > job["read"].get("io_bytes", 0) else job["read"]
    pct = side.get("clat_ns", {}).get("percentile", {})
    return {
        "mbps": side.get("bw_bytes", 0) / 1e6,
        "iops": side.get("iops", 0.0),
        "p50_us": pct.get("50.000000", 0) / 1000.0,
        "p99_us": pct.get("99.000000", 0) / 1000.0,
        "mean_us": side.get("clat_ns", {}).get("mean", 0) / 1000.0,
    }


def headline(workload, fig):
    return fig["mbps"] if metric_of(workload) == "MB/s" else fig["iops"]


def fmt_value(metric, v):
    if v is None:
        return "-"
    if metric == "IOPS":
        return f"{v / 1000:.1f}k" if v >= 10000 else f"{v:.0f}"
    return f"{v:.0f}"


def fmt_lat(us):
    """Microseconds as µs below 10 ms, else as ms (with the unit)."""
    return f"{us / 1000:.1f} ms" if us >= 10000 else f"{us:.0f} µs"


def collect(directory):
    with open(os.path.join(directory, "meta.json")) as f:
        meta = json.load(f)
    runs = {}   # (workload, server) -> [(round, figures)]
    errors = []
    raw_dir = os.path.join(directory, "raw")
    for name in sorted(os.listdir(raw_dir)):
        m = RAW_NAME.match(name)
        if not m:
            continue
        rnd, server, workload = int(m.group(1)), m.group(2), m.group(3)
        try:
            fig = figures(os.path.join(raw_dir, name))
        except (ValueError, KeyError, json.JSONDecodeError) as e:
            errors.append(str(e))
            continue
        runs.setdefault((workload, server), []).append((rnd, fig))
    return meta, runs, errors


def summarise(meta, runs):
    servers = [s for s in SERVERS if s in meta["servers"]]
    out = []
    for w in meta["workloads"]:
        name = w["name"]
        metric = metric_of(name)
        entry = {"name": name, "fio": w["fio"], "metric": metric, "servers": {}, "ratio_nbdboot_to": {},
                 "targets": {}}
        for s in servers:
            rs = sorted(runs.get((name, s), []))
            if not rs:
                continue
            vals = [headline(name, f) for _, f in rs]
            entry["servers"][s] = {
                "rounds": [round(v, 1) for v in vals],
                "median": round(statistics.median(vals), 1),
                "min": round(min(vals), 1),
                "max": round(max(vals), 1),
                "mbps_median": round(statistics.median(f["mbps"] for _, f in rs), 1),
                "iops_median": round(statistics.median(f["iops"] for _, f in rs), 1),
                "p50_us_median": round(statistics.median(f["p50_us"] for _, f in rs), 1),
                "p99_us_median": round(statistics.median(f["p99_us"] for _, f in rs), 1),
                "mean_us_median": round(statistics.median(f["mean_us"] for _, f in rs), 1),
            }
        mine = entry["servers"].get("nbdboot")
        for s in servers:
            if s == "nbdboot" or s not in entry["servers"] or not mine:
                continue
            peer = entry["servers"][s]["median"]
            if peer > 0:
                r = mine["median"] / peer
                entry["ratio_nbdboot_to"][s] = round(r, 3)
                entry["targets"][s] = {"needed": target(name, s), "met": r >= target(name, s)}
        out.append(entry)
    return servers, out


def table(servers, summary):
    peers = [s for s in servers if s != "nbdboot"]
    head = ["workload", "unit"] + [f"{s} (p50 / p99)" for s in servers] + \
           ([f"nbdboot ÷ {p}" for p in peers] if "nbdboot" in servers else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in summary:
        cells = [e["name"], e["metric"]]
        for s in servers:
            d = e["servers"].get(s)
            cells.append("failed" if d is None else
                         f"{fmt_value(e['metric'], d['median'])} ({fmt_lat(d['p50_us_median'])} / {fmt_lat(d['p99_us_median'])})")
        if "nbdboot" in servers:
            for p in peers:
                r = e["ratio_nbdboot_to"].get(p)
                if r is None:
                    cells.append("-")
                else:
                    t = e["targets"][p]
                    cells.append(f"{r:.2f}× {'✓' if t['met'] else '✗'} (≥{t['needed']})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def chart(servers, summary, meta, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    colors = {"nbdboot": "#d62728", "nbdkit": "#1f77b4", "nbd-server": "#2ca02c", "qemu-nbd": "#9467bd"}
    n = len(summary)
    cols = 3
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for i, e in enumerate(summary):
        ax = axes[i // cols][i % cols]
        names = [s for s in servers if s in e["servers"]]
        med = [e["servers"][s]["median"] for s in names]
        lo = [e["servers"][s]["median"] - e["servers"][s]["min"] for s in names]
        hi = [e["servers"][s]["max"] - e["servers"][s]["median"] for s in names]
        scale = 1000.0 if e["metric"] == "IOPS" else 1.0
        unit = "k IOPS" if scale == 1000.0 else "MB/s"
        ax.bar(range(len(names)), [m / scale for m in med],
               yerr=[[v / scale for v in lo], [v / scale for v in hi]], capsize=3,
               color=[colors[s] for s in names])
        for j, m in enumerate(med):
            ax.text(j, m / scale, f"{m / scale:.0f}" if scale == 1 else f"{m / scale:.1f}",
                    ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, fontsize=8)
        ax.set_title(f"{e['name']}  ({e['fio'].replace('--', '')})", fontsize=8)
        ax.set_ylabel(unit, fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
    for j in range(n, rows * cols):
        axes[j // cols][j % cols].axis("off")
    fig.suptitle(f"NBD servers, fio nbd engine, 127.0.0.1, 1 GiB image in tmpfs; medians of "
                 f"{meta['rounds']} round(s) x {meta['runtime_s']} s (bars: min-max)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv):
    if len(argv) == 2 and argv[0] == "brief":
        f = figures(argv[1])
        name = RAW_NAME.match(os.path.basename(argv[1]))
        w = name.group(3) if name else "seq" if f["mbps"] > 500 else "rand"
        print(f"{fmt_value(metric_of(w), headline(w, f))} {metric_of(w)}, "
              f"p50 {fmt_lat(f['p50_us'])}, p99 {fmt_lat(f['p99_us'])}")
        return 0
    if len(argv) == 2 and argv[0] == "report":
        d = argv[1]
        meta, runs, errors = collect(d)
        servers, summary = summarise(meta, runs)
        machine = ""
        mpath = os.path.join(d, "machine.txt")
        if os.path.exists(mpath):
            with open(mpath) as f:
                machine = f.read()
        result = dict(meta)
        result["machine"] = machine
        result["unreadable_runs"] = errors
        result["workloads"] = summary
        with open(os.path.join(d, "results.json"), "w") as f:
            json.dump(result, f, indent=2)
        t = table(servers, summary)
        with open(os.path.join(d, "table.md"), "w") as f:
            f.write(t + "\n")
        chart(servers, summary, meta, os.path.join(d, "chart.png"))
        print()
        print(f"Medians of {meta['rounds']} round(s), {meta['runtime_s']} s each; "
              "MB/s = 10^6 B/s; latency = fio completion latency p50 / p99.")
        print(t)
        for e in errors:
            print(f"unreadable: {e}", file=sys.stderr)
        return 0
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
