# Boot storm part of scripts/bench.sh (`scripts/bench.sh --storm [N]`);
# sourced by it after bench-servers.sh, with $out, $work, $PY, $port_base
# set. Defines storm_main N, which sets storm_status (0 when every run
# completed).
#
# Base image: SOURCE_DATE_EPOCH=0 scripts/make-root-image.sh BASE 32M (in
# tmpfs), the image Tests/bench/boot-working-set.txt was recorded on. Each
# round (BENCH_STORM_ROUNDS, default 3; BENCH_QUICK=1: 1), servers in
# rotated order, each started fresh with empty overlays:
#   nbdboot    --export root=BASE,cow,overlays=DIR, stations use export
#              root@stN (its own overlay each). When this nbdboot has no
#              ,cow option yet, a plain export of a copy of BASE, all
#              stations writing into it: marked "no cow yet" (and stations
#              do not verify, since they overwrite each other).
#   nbd-server copyonwrite = true, cowdir = DIR (a diff file per connection,
#              a process per client), export "root".
# The overlay directory is in tmpfs ($work, beside the base), emptied per run.
# and N stations run scripts/bench-station.py storm (BENCH_STORM_WRITE_MIB
# MiB of writes each, default 4; bounded by BENCH_STORM_TIMEOUT s, default
# 300; a station that gets no NBD greeting within BENCH_STORM_CONNECT_TIMEOUT
# s, default 5, reconnects, as an initramfs would retry). Then, per server, once: N idle connections (bench-station.py idle)
# for the memory per connection.
# Results: $out/storm.json (every run and the medians), $out/storm.md (table).

storm_main() {
  local n=$1 rounds write_mib limit base ws servers=(nbdboot nbd-server) round k server port
  local mode uri verify raw cow_note="" image connect_timeout
  declare -A sport=([nbdboot]=$((port_base + 10)) [nbd-server]=$((port_base + 12)))
  storm_status=0
  if [ "${BENCH_QUICK:-0}" = 1 ]; then rounds=${BENCH_STORM_ROUNDS:-1}; else rounds=${BENCH_STORM_ROUNDS:-3}; fi
  write_mib=${BENCH_STORM_WRITE_MIB:-4}
  limit=${BENCH_STORM_TIMEOUT:-300}
  connect_timeout=${BENCH_STORM_CONNECT_TIMEOUT:-5}
  for v in rounds write_mib limit connect_timeout; do
    [[ ${!v} =~ ^[0-9]+$ ]] || bench_die "storm: $v '${!v}' is not a whole number"
  done
  [ "$rounds" -ge 1 ] && [ "$rounds" -le 10 ] || bench_die "BENCH_STORM_ROUNDS $rounds: use 1-10"
  ws=$repo/Tests/bench/boot-working-set.txt
  [ -f "$ws" ] || bench_die "no working set at $ws: record it with scripts/bench-record-boot.sh"
  base=$work/base.img
  SOURCE_DATE_EPOCH=0 scripts/make-root-image.sh "$base" 32M >"$out/logs/make-root-image.txt" 2>&1 ||
    bench_die "scripts/make-root-image.sh failed: $(cat "$out/logs/make-root-image.txt")"
  local want
  want=$(sed -n 's/^image-size \([0-9]*\)$/\1/p' "$ws")
  [ "$(stat -c %s "$base")" = "$want" ] || bench_die "the base image is $(stat -c %s "$base") bytes but $ws was recorded on $want bytes: re-record it"
  if ! bench_has_cow; then
    cow_note="no cow yet"
    bench_log "bench: this nbdboot has no ',cow' exports yet: its storm runs on a plain shared export (marked 'no cow yet')"
  fi
  bench_log "bench: boot storm, $n stations, $rounds round(s), $(grep -c '^[RWFTZC] ' "$ws") recorded requests + $write_mib MiB of writes per station"

  mkdir -p "$out/storm"
  for ((round = 1; round <= rounds; round++)); do
    for ((k = 0; k < 2; k++)); do
      server=${servers[$(((round - 1 + k) % 2))]}
      port=${sport[$server]}
      image=$base; verify=(); uri="nbd://127.0.0.1:$port/root"
      if [ "$server" = nbdboot ]; then
        if [ -n "$cow_note" ]; then
          image=$work/plain.img; cp "$base" "$image"; verify=(--no-verify)
        else
          uri="nbd://127.0.0.1:$port/root@st{n}"
        fi
      fi
      # Overlays in tmpfs beside the base, like the images of the fio part.
      bench_start "$server" "$port" "$image" "$out/logs/storm-round$round-$server" storm "$work/overlays"
      raw=$out/storm/round$round-$server.json
      printf 'bench: storm round %d %-10s ' "$round" "$server" >&2
      if ! timeout -k 5 $((limit + 30)) "$PY" scripts/bench-station.py storm --uri "$uri" --stations "$n" \
          --working-set "$ws" --server-pid "$BENCH_SERVER_PID" --write-mib "$write_mib" \
          --connect-timeout "$connect_timeout" \
          --timeout "$limit" "${verify[@]}" --json "$raw" >&2; then
        storm_status=1
      fi
      # Allocated bytes (the data files are sparse, of the base's size).
      du -s -B1 "$work/overlays" 2>/dev/null | cut -f1 >"$raw.overlay-bytes" || true
      bench_stop
      rm -rf "$work/overlays" "$work/plain.img"
    done
  done

  for server in "${servers[@]}"; do
    port=${sport[$server]}
    image=$base; uri="nbd://127.0.0.1:$port/root"
    if [ "$server" = nbdboot ]; then
      if [ -n "$cow_note" ]; then image=$work/plain.img; cp "$base" "$image"; else uri="nbd://127.0.0.1:$port/root@st{n}"; fi
    fi
    bench_start "$server" "$port" "$image" "$out/logs/idle-$server" storm "$work/overlays"
    printf 'bench: idle %-10s ' "$server" >&2
    timeout -k 5 150 "$PY" scripts/bench-station.py idle --uri "$uri" --connections "$n" \
      --server-pid "$BENCH_SERVER_PID" --timeout 120 --json "$out/storm/idle-$server.json" >&2 || storm_status=1
    bench_stop
    rm -rf "$work/overlays" "$work/plain.img"
  done

  "$PY" - "$out" "$n" "$rounds" "$write_mib" "$cow_note" "$connect_timeout" <<'EOF'
import json, os, statistics, sys
out, n, rounds, write_mib, cow_note = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
connect_timeout = float(sys.argv[6])
d = os.path.join(out, "storm")
MiB = 1048576
res = {"stations": n, "rounds": rounds, "write_mib_per_station": write_mib,
       "nbdboot_note": cow_note, "servers": {}}
for server in ("nbdboot", "nbd-server"):
    runs = []
    for r in range(1, rounds + 1):
        p = os.path.join(d, f"round{r}-{server}.json")
        if os.path.exists(p):
            with open(p) as f:
                run = json.load(f)
            try:
                with open(p + ".overlay-bytes") as f:
                    run["overlay_bytes"] = int(f.read().strip() or 0)
            except (OSError, ValueError):
                run["overlay_bytes"] = None
            runs.append(run)
    idle = None
    p = os.path.join(d, f"idle-{server}.json")
    if os.path.exists(p):
        with open(p) as f:
            idle = json.load(f)
    times = [x["time_to_last_s"] for x in runs if x.get("time_to_last_s") is not None]
    res["servers"][server] = {
        "runs": runs,
        "time_to_last_s_median": statistics.median(times) if times else None,
        "time_to_last_s_all": times,
        "peak_rss_mib_max": max((x["memory"]["peak_rss"] for x in runs), default=0) / MiB,
        "peak_pss_mib_max": max((x["memory"]["peak_pss"] for x in runs), default=0) / MiB,
        "sum_vmhwm_mib_max": max((x["memory"]["sum_vmhwm"] for x in runs), default=0) / MiB,
        "verify_mismatches": sum(x.get("verify_mismatches", 0) for x in runs),
        "idle": idle,
    }
a, b = res["servers"]["nbdboot"], res["servers"]["nbd-server"]
if a["time_to_last_s_median"] and b["time_to_last_s_median"]:
    res["speedup_nbdboot_vs_nbd_server"] = round(b["time_to_last_s_median"] / a["time_to_last_s_median"], 3)
with open(os.path.join(out, "storm.json"), "w") as f:
    json.dump(res, f, indent=2)
def cell_t(s):
    t = s["time_to_last_s_median"]
    return "failed" if t is None else f"{t:.2f} s (" + " / ".join(f"{x:.2f}" for x in s["time_to_last_s_all"]) + ")"
def cell_first(s):
    t = [x.get("time_to_last_first_try_s") for x in s["runs"]]
    if not t or any(v is None for v in t):
        return "-"
    return f"{statistics.median(t):.2f} s (" + " / ".join(f"{v:.2f}" for v in t) + ")"
def cell_idle(s, key):
    i = s["idle"]
    return "-" if not i else f"{i[key] / 1024:.0f} KiB"
rows = [
    ("time until the last station is done (median; rounds)", cell_t(a), cell_t(b)),
    ("the same, counting only stations that connected at the first attempt (median; rounds)",
     *[cell_first(s) for s in (a, b)]),
    ("server peak memory: sum RSS of its processes (sampled every 20 ms)", f"{a['peak_rss_mib_max']:.1f} MiB", f"{b['peak_rss_mib_max']:.1f} MiB"),
    ("server peak memory: sum of each process's VmHWM", f"{a['sum_vmhwm_mib_max']:.1f} MiB", f"{b['sum_vmhwm_mib_max']:.1f} MiB"),
    ("server peak memory: sum PSS (every 5th sample)", f"{a['peak_pss_mib_max']:.1f} MiB", f"{b['peak_pss_mib_max']:.1f} MiB"),
    (f"stations that had to reconnect (no greeting within {connect_timeout:g} s) / reconnects, all rounds together",
     *[" / ".join(str(sum(x.get(k, 0) for x in s["runs"])) for k in ("stations_that_retried", "connect_retries")) for s in (a, b)]),
    ("per-station time, median of the rounds' medians",
     *[("-" if not s["runs"] or not all(x.get("station_s") for x in s["runs"]) else
        f"{statistics.median(x['station_s']['median'] for x in s['runs']):.2f} s") for s in (a, b)]),
    ("peak number of server processes", str(max((x["memory"]["peak_processes"] for x in a["runs"]), default=0)),
     str(max((x["memory"]["peak_processes"] for x in b["runs"]), default=0))),
    ("overlay files left after the storm (tmpfs, not in RSS; nbd-server deletes its diffs at disconnect)",
     *[("-" if not s["runs"] or s["runs"][-1].get("overlay_bytes") is None else f"{s['runs'][-1]['overlay_bytes'] / MiB:.1f} MiB") for s in (a, b)]),
    (f"memory per idle connection ({n} open), RSS", cell_idle(a, "rss_per_connection"), cell_idle(b, "rss_per_connection")),
    ("memory per idle connection, PSS", cell_idle(a, "pss_per_connection"), cell_idle(b, "pss_per_connection")),
    ("stations whose read-back of their own write was wrong", str(a["verify_mismatches"]) if not cow_note else "not checked",
     str(b["verify_mismatches"])),
]
label = "nbdboot" + (f" ({cow_note})" if cow_note else " (cow overlays)")
lines = [f"| {n} stations, {rounds} round(s) | {label} | nbd-server copyonwrite |", "|---|---|---|"]
lines += [f"| {r[0]} | {r[1]} | {r[2]} |" for r in rows]
if "speedup_nbdboot_vs_nbd_server" in res:
    lines.append(f"| nbd-server time ÷ nbdboot time | {res['speedup_nbdboot_vs_nbd_server']:.2f}× (target ≥ 2) | |")
if n >= 256:
    peak = max(a["peak_rss_mib_max"], a["sum_vmhwm_mib_max"])
    lines.append(f"| nbdboot peak memory with {n} stations | {peak:.1f} MiB {'✓' if peak < 512 else '✗'} (target < 512 MiB) | |")
t = "\n".join(lines)
with open(os.path.join(out, "storm.md"), "w") as f:
    f.write(t + "\n")
print()
print(t)
EOF
  echo "results: $out (storm.json, storm.md, storm/ per run; machine load in machine.txt)"
}
