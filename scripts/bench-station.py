#!/usr/bin/python3
"""Station simulator of nbdboot's boot-storm benchmark (scripts/bench.sh
--storm): N stations boot at once, each on its own NBD connection, each
replaying the recorded boot working set of the demo station
(Tests/bench/boot-working-set.txt, scripts/bench-working-set.py) plus some
writes of its own, while the server's memory is sampled.

    bench-station.py storm --uri URI --stations N --working-set FILE --server-pid PID
                           [--write-mib 4] [--no-verify] [--timeout 300] --json OUT
    bench-station.py idle  --uri URI --connections N --server-pid PID [--timeout 120] --json OUT

URI may contain {n}, replaced by the station number 1..N, e.g.
nbd://127.0.0.1:21510/root@st{n} (nbdboot: each station its own
copy-on-write overlay) or nbd://127.0.0.1:21512/root (nbd-server with
`copyonwrite = true` gives every connection its own overlay anyway).

storm: every station is a thread with its own libnbd handle (libnbd's
Python binding releases the GIL in every blocking call, so threads wait on
the network in parallel). All threads start together at a barrier; the
clock runs from there. A station connects (NBD handshake), then sends the
working set's requests one at a time in the recorded order (a booting
single-CPU station mostly waits for each read before the next: QD1), with
WRITE_MIB MiB of 64 KiB writes of its own spread evenly between them at
offsets drawn from a generator seeded with the station number, then a
FLUSH; unless --no-verify it reads its last own write back and compares it
(a wrong byte means stations share writes: no per-station overlay); then it
disconnects. Reported: time until the last station is done, per-station
times (median, p90, max), errors, and the server's memory: the sum over the
server PID and all its descendants (nbd-server forks one child per client)
of RSS (VmRSS in /proc/PID/status) sampled every --interval s (default
20 ms: a storm of the small demo working set is over in well under a
second), of PSS (/proc/PID/smaps_rollup, shared pages split between
sharers) every 5th sample, and each process's VmHWM (the kernel's peak
RSS, which no sampling gap can miss); peak and before the storm.

idle: opens N connections (handshake done, no requests), waits until the
server's memory settles (1 s), samples it, and reports (after - before) / N
per connection, RSS and PSS.
"""
import argparse
import importlib.util
import json
import os
import random
import statistics
import sys
import threading
import time

import nbd

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("bench_working_set", os.path.join(HERE, "bench-working-set.py"))
working_set = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(working_set)

PAGE = os.sysconf("SC_PAGE_SIZE")
WRITE_BS = 64 * 1024


# ---- server memory -----------------------------------------------------------

def process_tree(root):
    """root and all its descendants, from the parent field of /proc/*/stat."""
    parent = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                line = f.read()
        except OSError:
            continue
        fields = line[line.rfind(")") + 2:].split()
        parent[int(d)] = int(fields[1])
    tree, frontier = [root], [root]
    while frontier:
        frontier = [p for p, pp in parent.items() if pp in frontier]
        tree.extend(frontier)
    return tree


def status_bytes(pid):
    """(VmRSS, VmHWM) of /proc/PID/status in bytes; (0, 0) once it is gone."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return rss, hwm


def pss_bytes(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def memory(root, with_pss=True):
    procs = process_tree(root)
    st = {p: status_bytes(p) for p in procs}
    rss = sum(r for r, _ in st.values())
    pss = sum(pss_bytes(p) for p in procs) if with_pss else None
    return {"processes": len(procs), "rss": rss, "pss": pss, "hwm": {p: h for p, (_, h) in st.items()}}


class Sampler(threading.Thread):
    """Samples the server's memory every `interval` s (PSS every 5th sample)
    until stopped: the peak of the summed RSS, of the summed PSS, and per
    process the largest VmHWM seen (the kernel's own peak RSS of that
    process, which catches peaks between samples; summed over processes it
    is an upper bound of the joint peak)."""

    def __init__(self, root, interval):
        super().__init__(daemon=True)
        self.root = root
        self.interval = interval
        self.stop = threading.Event()
        self.peak_rss = 0
        self.peak_pss = 0
        self.peak_processes = 0
        self.hwm = {}
        self.samples = 0

    def run(self):
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(self.interval)
        self.sample()

    def sample(self):
        m = memory(self.root, with_pss=self.samples % 5 == 0)
        self.peak_rss = max(self.peak_rss, m["rss"])
        if m["pss"] is not None:
            self.peak_pss = max(self.peak_pss, m["pss"])
        self.peak_processes = max(self.peak_processes, m["processes"])
        for p, h in m["hwm"].items():
            self.hwm[p] = max(self.hwm.get(p, 0), h)
        self.samples += 1


# ---- one station ---------------------------------------------------------------

def plan(station, reqs, image_size, write_mib):
    """The station's request list: the working set with its own writes spread in."""
    rng = random.Random(station)
    n_writes = write_mib * 1024 * 1024 // WRITE_BS
    slots = image_size // WRITE_BS
    own = [("W", rng.randrange(slots) * WRITE_BS, WRITE_BS) for _ in range(n_writes)]
    after = {}
    for j, w in enumerate(own):
        after.setdefault((j + 1) * len(reqs) // (n_writes + 1), []).append(w)
    out = list(after.get(0, []))
    for i, r in enumerate(reqs, 1):
        out.append(r)
        out.extend(after.get(i, []))
    return out


class Station(threading.Thread):
    def __init__(self, n, uri, requests, barrier, verify, t0_holder, connect_timeout):
        super().__init__(daemon=True)
        self.connect_timeout = connect_timeout
        self.retries = 0
        self.n = n
        self.uri = uri.replace("{n}", str(n))
        self.requests = requests
        self.barrier = barrier
        self.verify = verify
        self.t0 = t0_holder
        self.error = None
        self.done_at = None
        self.mismatch = False
        self.stage = "waiting at the start barrier"
        self.pattern = bytes([(n * 37 + 11) & 0xFF]) * WRITE_BS

    def connect(self):
        """Connects with a deadline per attempt, as a station's initramfs
        would retry: a server whose accept queue overflowed (listen(2)
        backlog) drops the connection after the client already counts it
        as established, and since an NBD server speaks first, the client
        would otherwise wait forever for the greeting."""
        last = "timeout"
        for attempt in range(1, 101):
            self.stage = f"connecting (attempt {attempt}; previous: {last})"
            h = nbd.NBD()
            deadline = time.monotonic() + self.connect_timeout
            try:
                h.aio_connect_uri(self.uri)
                while h.aio_is_connecting() and time.monotonic() < deadline:
                    h.poll(max(1, int((deadline - time.monotonic()) * 1000)))
                if h.aio_is_ready():
                    return h
                last = f"no greeting within {self.connect_timeout} s"
            except nbd.Error as e:
                # refused or reset (a full SYN queue, a server that closed it): wait a little
                last = e.string
                time.sleep(0.2)
            self.retries += 1
            del h
        raise nbd.Error(f"no connection after 100 attempts (last: {last})", 0)

    def run(self):
        try:
            self.barrier.wait()
            h = self.connect()
            last_own = None
            for i, (op, off, cnt) in enumerate(self.requests):
                self.stage = f"request {i + 1} of {len(self.requests)}: {op} {off} {cnt}"
                if op == "R":
                    h.pread(cnt, off)
                elif op == "W":
                    if cnt == WRITE_BS:
                        h.pwrite(self.pattern, off)
                        last_own = off
                    else:
                        h.pwrite(self.pattern[:1] * cnt, off)
                elif op == "F":
                    h.flush()
                elif op == "T":
                    h.trim(cnt, off)
                elif op == "Z":
                    h.zero(cnt, off)
                elif op == "C":
                    if h.can_cache():
                        h.cache(cnt, off)
                    else:
                        h.pread(cnt, off)
            self.stage = "final flush"
            h.flush()
            self.stage = "read-back"
            if self.verify and last_own is not None:
                self.mismatch = h.pread(WRITE_BS, last_own) != self.pattern
            self.stage = "disconnecting"
            h.shutdown()
            self.stage = "done"
            self.done_at = time.monotonic() - self.t0[0]
        except nbd.Error as e:
            self.error = f"station {self.n} ({self.uri}): {e}"
        except threading.BrokenBarrierError:
            self.error = f"station {self.n}: start barrier broken"


def storm(args):
    image_size, reqs = working_set.load(args.working_set)
    n = args.stations
    t0 = [0.0]
    barrier = threading.Barrier(n + 1, timeout=60)
    stations = [Station(i, args.uri, plan(i, reqs, image_size, args.write_mib), barrier, not args.no_verify, t0,
                        args.connect_timeout)
                for i in range(1, n + 1)]
    before = memory(args.server_pid)
    sampler = Sampler(args.server_pid, args.interval)
    sampler.start()
    for s in stations:
        s.start()
    t0[0] = time.monotonic()
    barrier.wait()
    t0[0] = time.monotonic()
    deadline = t0[0] + args.timeout
    for s in stations:
        s.join(max(0.0, deadline - time.monotonic()))
    wall = time.monotonic() - t0[0]
    sampler.stop.set()
    sampler.join(2)
    unfinished = [f"station {s.n}: {s.stage}" for s in stations if s.is_alive()]
    errors = [s.error for s in stations if s.error]
    times = sorted(s.done_at for s in stations if s.done_at is not None)
    per_station = len(plan(1, reqs, image_size, args.write_mib))
    first_try = [s.done_at for s in stations if s.done_at is not None and s.retries == 0]
    result = {
        "uri": args.uri, "stations": n, "working_set": args.working_set,
        "requests_per_station": per_station,
        "read_bytes_per_station": sum(c for o, _, c in reqs if o == "R"),
        "write_bytes_per_station": sum(c for o, _, c in plan(1, reqs, image_size, args.write_mib) if o == "W"),
        "time_to_last_s": round(times[-1], 3) if times and not unfinished and not errors else None,
        "wall_s": round(wall, 3),
        "station_s": {"median": round(statistics.median(times), 3), "p90": round(times[int(0.9 * (len(times) - 1))], 3),
                      "max": round(times[-1], 3)} if times else None,
        "finished": len(times), "unfinished": unfinished, "errors": errors[:10], "error_count": len(errors),
        # The same, counting only the stations that got in at the first
        # attempt: the server's own speed, without the reconnect model.
        "time_to_last_first_try_s": round(max(first_try), 3) if first_try else None,
        "first_try_stations": len(first_try),
        "connect_timeout_s": args.connect_timeout,
        "connect_retries": sum(s.retries for s in stations),
        "stations_that_retried": sum(1 for s in stations if s.retries),
        "verified": not args.no_verify,
        "verify_mismatches": sum(1 for s in stations if s.mismatch),
        "memory": {"before_rss": before["rss"], "before_pss": before["pss"],
                   "peak_rss": sampler.peak_rss, "peak_pss": sampler.peak_pss,
                   "sum_vmhwm": sum(sampler.hwm.values()), "main_vmhwm": sampler.hwm.get(args.server_pid, 0),
                   "peak_processes": sampler.peak_processes, "samples": sampler.samples,
                   "interval_s": args.interval},
    }
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
    mib = 1048576
    if result["time_to_last_s"] is not None:
        print(f"{n} stations: last done after {result['time_to_last_s']:.2f} s "
              f"(per station median {result['station_s']['median']:.2f} s, p90 {result['station_s']['p90']:.2f} s); "
              f"server peak RSS {sampler.peak_rss / mib:.1f} MiB (sum of VmHWM {sum(sampler.hwm.values()) / mib:.1f}), "
              f"PSS {sampler.peak_pss / mib:.1f} MiB "
              f"in {sampler.peak_processes} process(es); verify mismatches {result['verify_mismatches']}; "
              f"connect retries {result['connect_retries']}")
    else:
        print(f"{n} stations: FAILED: {len(times)} finished, {len(unfinished)} still running after "
              f"{args.timeout} s, {len(errors)} errors {errors[:3]}; stuck: {'; '.join(unfinished[:5])}")
    return 0 if result["time_to_last_s"] is not None else 1


def idle(args):
    n = args.connections
    before = memory(args.server_pid)
    before.pop("hwm")
    handles = []
    deadline = time.monotonic() + args.timeout
    err = None
    try:
        for i in range(1, n + 1):
            if time.monotonic() > deadline:
                err = f"only {i - 1} of {n} connections within {args.timeout} s"
                break
            h = nbd.NBD()
            h.connect_uri(args.uri.replace("{n}", str(i)))
            handles.append(h)
    except nbd.Error as e:
        err = f"connection {len(handles) + 1} ({args.uri}): {e}"
    time.sleep(1.0)
    after = memory(args.server_pid)
    after.pop("hwm")
    for h in handles:
        try:
            h.shutdown()
        except nbd.Error:
            pass
    k = max(1, len(handles))
    result = {
        "uri": args.uri, "connections": len(handles), "asked": n, "error": err,
        "before": before, "after": after,
        "rss_per_connection": (after["rss"] - before["rss"]) / k,
        "pss_per_connection": (after["pss"] - before["pss"]) / k,
    }
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
    print(f"{len(handles)} idle connections: server RSS {before['rss'] / 1048576:.1f} -> {after['rss'] / 1048576:.1f} MiB, "
          f"{result['rss_per_connection'] / 1024:.0f} KiB RSS and {result['pss_per_connection'] / 1024:.0f} KiB PSS "
          f"per connection ({after['processes']} process(es)){'; ' + err if err else ''}")
    return 0 if err is None else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("storm")
    s.add_argument("--uri", required=True)
    s.add_argument("--stations", type=int, required=True)
    s.add_argument("--working-set", required=True)
    s.add_argument("--server-pid", type=int, required=True)
    s.add_argument("--write-mib", type=int, default=4)
    s.add_argument("--no-verify", action="store_true")
    s.add_argument("--timeout", type=float, default=300)
    s.add_argument("--interval", type=float, default=0.02)
    s.add_argument("--connect-timeout", type=float, default=5.0)
    s.add_argument("--json", required=True)
    i = sub.add_parser("idle")
    i.add_argument("--uri", required=True)
    i.add_argument("--connections", type=int, required=True)
    i.add_argument("--server-pid", type=int, required=True)
    i.add_argument("--timeout", type=float, default=120)
    i.add_argument("--json", required=True)
    args = p.parse_args()
    n = args.stations if args.mode == "storm" else args.connections
    if not 1 <= n <= 1024:
        p.error(f"the number of stations/connections must be 1-1024, not {n}")
    if not os.path.exists(f"/proc/{args.server_pid}"):
        p.error(f"--server-pid {args.server_pid}: no such process (is the server running?)")
    try:
        rc = storm(args) if args.mode == "storm" else idle(args)
    except working_set.WorkingSetError as e:
        print(f"bench-station.py: {e}", file=sys.stderr)
        rc = 1
    sys.stdout.flush()
    # Stations still blocked in libnbd after the timeout must not keep us alive.
    os._exit(rc)


if __name__ == "__main__":
    main()
