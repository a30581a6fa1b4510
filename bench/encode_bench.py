#!/usr/bin/env python3
"""Runner behind bench/encode.sh (stdlib only).

Runs the ffmpeg baseline and tessera alternately (order swapped every round),
times each with time.monotonic() around the whole process, records the CPU
time of the process tree (RUSAGE_CHILDREN delta), reads tessera's
--report-json, then prints every run, medians, ratios and output checks.

Command lines come from NUL-separated argv files written by encode.sh; the
tokens {state_dir} and {report} are replaced per run.
"""

import argparse
import datetime
import json
import os
import re
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time

OVERHEAD_TARGET_PCT = 3.0
RATIO_TARGET = 1.00


def read_argv(path):
    with open(path, "rb") as f:
        parts = f.read().split(b"\0")
    return [os.fsdecode(p) for p in parts[:-1]]


def find_key(obj, key):
    """First value for `key` in a (possibly nested) JSON object, else None."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        for v in obj.values():
            found = find_key(v, key)
            if found is not None:
                return found
    elif isinstance(obj, list):
        for v in obj:
            found = find_key(v, key)
            if found is not None:
                return found
    return None


def run_timed(argv, log_path, timeout):
    """Runs argv in its own session; returns (rc, wall_s, cpu_s)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log_path, "wb") as log:
        log.write(("$ " + " ".join(argv) + "\n").encode())
        log.flush()
        t0 = time.monotonic()
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc = "timeout"
        wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return rc, wall, cpu


def tail(path, n=15):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
        return "\n".join("    " + l for l in lines[-n:])
    except OSError:
        return "    (no log)"


def ffprobe_json(path, *args):
    r = subprocess.run(
        ["ffprobe", "-v", "error", *args, "-of", "json", path],
        capture_output=True, text=True, check=False,
    )
    if r.returncode != 0:
        return None
    return json.loads(r.stdout)


def packet_counts(path):
    """{'video': n, 'audio': n, 'duration': s} of the first streams of each kind."""
    out = {}
    for kind, sel in (("video", "v:0"), ("audio", "a:0")):
        j = ffprobe_json(path, "-select_streams", sel, "-count_packets",
                         "-show_entries", "stream=nb_read_packets")
        streams = (j or {}).get("streams") or []
        out[kind] = int(streams[0]["nb_read_packets"]) if streams else None
    j = ffprobe_json(path, "-show_entries", "format=duration")
    try:
        out["duration"] = float(j["format"]["duration"])
    except (TypeError, KeyError, ValueError):
        out["duration"] = None
    return out


def audio_samples(path):
    """Decoded samples of the first audio stream (mono s16), after the
    container's priming/padding trims; None without audio."""
    r = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", "0:a:0?",
         "-ac", "1", "-f", "s16le", "-"],
        capture_output=True, check=False,
    )
    return len(r.stdout) // 2 if r.returncode == 0 and r.stdout else None


def quality(src, candidate):
    """(PSNR avg dB, SSIM all) of candidate against src, paired by frame index
    (tessera's output carries ms-rounded timestamps, so pairing by pts misaligns)."""
    graph = ("[0:v]settb=1,setpts=N,split[a0][a1];"
             "[1:v]settb=1,setpts=N,split[b0][b1];"
             "[a0][b0]psnr;[a1][b1]ssim")
    r = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-i", candidate, "-i", src,
         "-lavfi", graph, "-f", "null", "-"],
        capture_output=True, text=True, check=False,
    )
    psnr = re.search(r"PSNR .* average:([0-9.inf]+)", r.stderr)
    ssim = re.search(r"SSIM .* All:([0-9.]+)", r.stderr)
    return (float(psnr.group(1)) if psnr else None,
            float(ssim.group(1)) if ssim else None)


def schedule(db_path):
    """Chunk-encode schedule from tessera's state DB (internal schema; best
    effort, None if it cannot be read): slots used, slot utilisation over the
    encode span, idle slot time (tail effects), chunk walls, chunk CPU."""
    if not os.path.exists(db_path):
        return None
    try:
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        rows = con.execute(
            "SELECT t.name, a.started_at, a.ended_at, a.wall_ms, a.cpu_ms FROM attempts a"
            " JOIN tasks t ON t.job_id = a.job_id AND t.idx = a.idx"
            " WHERE t.name LIKE 'encode-chunk-%' AND a.ended_at IS NOT NULL"
            " ORDER BY a.started_at").fetchall()
        con.close()
    except sqlite3.Error:
        return None
    if not rows:
        return None
    start = min(r[1] for r in rows)
    end = max(r[2] for r in rows)
    events = sorted([(r[1], 1) for r in rows] + [(r[2], -1) for r in rows],
                    key=lambda e: (e[0], e[1]))
    running = slots = 0
    for _, d in events:
        running += d
        slots = max(slots, running)
    span = max(end - start, 1)
    busy = sum(r[2] - r[1] for r in rows)
    walls = [r[2] - r[1] for r in rows]
    return {
        "chunk_attempts": len(rows),
        "slots": slots,
        "chunk_span_ms": span,
        "slot_util_pct": 100.0 * busy / (slots * span),
        "idle_slot_ms": slots * span - busy,
        # From the first moment a slot has nothing left to start to the end.
        "tail_ms": end - sorted(r[2] for r in rows)[-slots] if len(rows) >= slots else 0,
        "chunk_wall_min_ms": min(walls),
        "chunk_wall_max_ms": max(walls),
        "chunk_cpu_ms": sum(r[4] or 0 for r in rows),
    }


def fmt(v, spec="{:.2f}", none="-"):
    return none if v is None else spec.format(v)


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--ffmpeg-argv", required=True)
    ap.add_argument("--tessera-argv", required=True)
    ap.add_argument("--ffmpeg-output", required=True)
    ap.add_argument("--tessera-output", required=True)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--label", default="")
    ap.add_argument("--quality", action="store_true")
    ap.add_argument("--strict", action="store_true")
    a = ap.parse_args()

    cmds = {"ffmpeg": read_argv(a.ffmpeg_argv), "tessera": read_argv(a.tessera_argv)}
    logs = os.path.join(a.out, "logs")
    reports = os.path.join(a.out, "reports")
    states = os.path.join(a.out, "state")
    for d in (logs, reports, states):
        os.makedirs(d, exist_ok=True)

    print(f"== tessera encode benchmark: {a.label}")
    print(f"   cores={os.cpu_count()} loadavg(before)={os.getloadavg()[0]:.2f} rounds={a.rounds}")
    print("   ffmpeg : " + " ".join(cmds["ffmpeg"]))
    print("   tessera: " + " ".join(cmds["tessera"]))
    sys.stdout.flush()

    runs = []  # one dict per round
    failures = []
    for r in range(1, a.rounds + 1):
        order = ("ffmpeg", "tessera") if r % 2 == 1 else ("tessera", "ffmpeg")
        row = {"round": r, "first": order[0]}
        for name in order:
            state_dir = os.path.join(states, f"r{r}")
            report = os.path.join(reports, f"r{r}.json")
            if name == "tessera":
                shutil.rmtree(state_dir, ignore_errors=True)
                if os.path.exists(report):
                    os.remove(report)
            argv = [x.replace("{state_dir}", state_dir).replace("{report}", report)
                    for x in cmds[name]]
            log = os.path.join(logs, f"r{r}-{name}.log")
            output = a.ffmpeg_output if name == "ffmpeg" else a.tessera_output
            if os.path.exists(output):
                os.remove(output)  # never check a stale file from an earlier run
            rc, wall, cpu = run_timed(argv, log, a.timeout)
            row[name] = {"rc": rc, "wall_s": wall, "cpu_s": cpu}
            print(f"   round {r}/{a.rounds} {name:<7} rc={rc} wall={wall:7.2f}s "
                  f"cpu={cpu:7.2f}s ({100 * cpu / wall:4.0f}% of 1 core)")
            sys.stdout.flush()
            if rc != 0:
                failures.append(f"round {r} {name} exited {rc}; log {log}:\n{tail(log)}")
                continue
            if name == "tessera":
                try:
                    with open(report) as f:
                        row["report"] = json.load(f)
                except (OSError, ValueError) as e:
                    failures.append(f"round {r} tessera: cannot read report {report}: {e}")
                    row["report"] = None
                row["schedule"] = schedule(os.path.join(state_dir, "tessera.db"))
                if not os.environ.get("BENCH_KEEP_STATE"):
                    shutil.rmtree(state_dir, ignore_errors=True)
        runs.append(row)

    # ---- per-run table -------------------------------------------------
    def rep(row, key):
        j = row.get("report")
        return None if j is None else find_key(j, key)

    for row in runs:
        f, t = row["ffmpeg"], row["tessera"]
        ok = f["rc"] == 0 and t["rc"] == 0
        row["ratio"] = t["wall_s"] / f["wall_s"] if ok else None
        wall_ms = rep(row, "wall_ms")
        pct = rep(row, "overhead_pct")
        if pct is None and wall_ms and rep(row, "overhead_ms") is not None:
            pct = 100.0 * rep(row, "overhead_ms") / wall_ms
        row["overhead_pct"] = pct

    print()
    hdr = (f"{'round':>5} {'first':>7} | {'ffmpeg s':>8} {'cpu%':>5} | {'tessera s':>9} {'cpu%':>5}"
           f" | {'ratio':>6} | {'rep wall':>8} {'span':>7} {'ovh ms':>7} {'ovh %':>6}"
           f" {'chunks':>6} {'att':>4} {'verif':>5}")
    print(hdr)
    print("-" * len(hdr))
    for row in runs:
        f, t = row["ffmpeg"], row["tessera"]
        print(f"{row['round']:>5} {row['first']:>7} | {f['wall_s']:8.2f} {100 * f['cpu_s'] / f['wall_s']:5.0f}"
              f" | {t['wall_s']:9.2f} {100 * t['cpu_s'] / t['wall_s']:5.0f}"
              f" | {fmt(row['ratio'], '{:6.3f}'):>6}"
              f" | {fmt(rep(row, 'wall_ms'), '{:.0f}'):>8} {fmt(rep(row, 'encode_span_ms'), '{:.0f}'):>7}"
              f" {fmt(rep(row, 'overhead_ms'), '{:.0f}'):>7} {fmt(row['overhead_pct'], '{:.2f}'):>6}"
              f" {fmt(rep(row, 'chunks'), '{}'):>6} {fmt(rep(row, 'attempts'), '{}'):>4}"
              f" {fmt(rep(row, 'verified'), '{}'):>5}")
    print("   (cpu% = user+sys of the whole process tree / wall; 100 = one core busy)")

    scheds = [(r["round"], r.get("schedule")) for r in runs if r.get("schedule")]
    if scheds:
        print()
        print("== tessera chunk schedule (from its state DB)")
        print(f"{'round':>5} {'chunks':>6} {'slots':>5} {'span s':>7} {'util %':>6}"
              f" {'idle slot s':>11} {'tail s':>6} {'chunk s min..max':>16} {'chunk cpu ms/frame':>18}")
        for rnd, sc in scheds:
            frames = rep(runs[rnd - 1], "frames")
            per_frame = f"{sc['chunk_cpu_ms'] / frames:.1f}" if frames else "-"
            print(f"{rnd:>5} {sc['chunk_attempts']:>6} {sc['slots']:>5} {sc['chunk_span_ms'] / 1000:7.2f}"
                  f" {sc['slot_util_pct']:6.1f} {sc['idle_slot_ms'] / 1000:11.2f} {sc['tail_ms'] / 1000:6.2f}"
                  f" {sc['chunk_wall_min_ms'] / 1000:7.2f}..{sc['chunk_wall_max_ms'] / 1000:<7.2f}"
                  f" {per_frame:>18}")
        print("   (tail = first slot left with nothing to start -> last chunk done)")

    good = [r for r in runs if r["ratio"] is not None]
    m_f = med([r["ffmpeg"]["wall_s"] for r in good])
    m_t = med([r["tessera"]["wall_s"] for r in good])
    m_ratio = med([r["ratio"] for r in good])
    m_ovh = med([r["overhead_pct"] for r in good])
    m_cpu_f = med([100 * r["ffmpeg"]["cpu_s"] / r["ffmpeg"]["wall_s"] for r in good])
    m_cpu_t = med([100 * r["tessera"]["cpu_s"] / r["tessera"]["wall_s"] for r in good])
    m_cpus_f = med([r["ffmpeg"]["cpu_s"] for r in good])
    m_cpus_t = med([r["tessera"]["cpu_s"] for r in good])

    print()
    print("== medians")
    print(f"   ffmpeg  wall {fmt(m_f)} s   cpu {fmt(m_cpus_f)} s ({fmt(m_cpu_f, '{:.0f}')}%)")
    print(f"   tessera wall {fmt(m_t)} s   cpu {fmt(m_cpus_t)} s ({fmt(m_cpu_t, '{:.0f}')}%)")
    if m_cpus_f and m_cpus_t:
        print(f"   cpu-seconds ratio tessera/ffmpeg: {m_cpus_t / m_cpus_f:.3f}")
    n_frames = med([rep(r, "frames") for r in good])
    if m_cpus_f and n_frames:
        print(f"   ffmpeg cpu ms/frame: {1000 * m_cpus_f / n_frames:.1f}"
              f" (compare 'chunk cpu ms/frame' above)")
    if m_f and m_t:
        print(f"   ratio of medians tessera/ffmpeg: {m_t / m_f:.3f}")
    m_span = med([rep(r, "encode_span_ms") for r in good])
    if m_span and m_f:
        print(f"   tessera encode span / ffmpeg wall: {m_span / 1000 / m_f:.3f}"
              f"  (how the chunk encodes alone compare)")
    steps = {}
    for r in good:
        for item in rep(r, "steps_ms") or []:
            if isinstance(item, (list, tuple)) and len(item) == 2:
                steps.setdefault(str(item[0]), []).append(item[1])
    if steps:
        print("   tessera non-encode steps (median ms): "
              + ", ".join(f"{k} {med(v):.0f}" for k, v in steps.items()))

    # ---- outputs --------------------------------------------------------
    print()
    print("== outputs (last run of each)")
    counts = {}
    for name, path in (("source", a.src), ("ffmpeg", a.ffmpeg_output),
                       ("tessera", a.tessera_output)):
        if not os.path.exists(path):
            print(f"   {name:<8} missing: {path}")
            counts[name] = None
            continue
        c = packet_counts(path)
        c["audio_samples"] = audio_samples(path)
        counts[name] = c
        size = os.path.getsize(path)
        line = (f"   {name:<8} {size / 1e6:8.2f} MB  video packets {c['video']}"
                f"  audio packets {c['audio']}  duration {fmt(c['duration'], '{:.3f}')} s")
        if a.quality and name != "source":
            psnr, ssim = quality(a.src, path)
            c["psnr"], c["ssim"] = psnr, ssim
            line += f"  PSNR {fmt(psnr)} dB  SSIM {fmt(ssim, '{:.5f}')}"
        c["bytes"] = size
        print(line)
    if counts.get("ffmpeg") and counts.get("tessera"):
        print(f"   size tessera/ffmpeg: {counts['tessera']['bytes'] / counts['ffmpeg']['bytes']:.3f}")
    vids = [c["video"] for c in counts.values() if c]
    frames_ok = len(vids) == 3 and len(set(vids)) == 1 and vids[0] is not None
    print(f"   video frame counts equal: {'yes' if frames_ok else 'NO'} ({vids})")
    samples = {k: c.get("audio_samples") for k, c in counts.items() if c}
    if any(v is not None for v in samples.values()):
        same = len(set(samples.values())) == 1
        print(f"   decoded audio samples equal: {'yes' if same else 'NO (warning: priming/padding or A/V offset differs)'}"
              f" ({', '.join(f'{k} {v}' for k, v in samples.items())})")

    # ---- verdict --------------------------------------------------------
    print()
    print("== result")
    ratio_ok = m_ratio is not None and m_ratio <= RATIO_TARGET
    ovh_ok = m_ovh is not None and m_ovh <= OVERHEAD_TARGET_PCT
    print(f"   median ratio tessera/ffmpeg: {fmt(m_ratio, '{:.3f}')}"
          f"  (target <= {RATIO_TARGET:.2f})  {'OK' if ratio_ok else 'MISS'}")
    print(f"   median overhead_pct:         {fmt(m_ovh, '{:.2f}')}"
          f"  (target <= {OVERHEAD_TARGET_PCT:.0f}%)  {'OK' if ovh_ok else 'MISS'}")
    verified = [rep(r, "verified") for r in good]
    print(f"   reports verified: {verified}")
    print(f"   loadavg(after)={os.getloadavg()[0]:.2f}")

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    results = os.path.join(a.out, f"results-{stamp}.json")
    with open(results, "w") as f:
        json.dump({"label": a.label, "commands": cmds, "runs": runs, "outputs": counts,
                   "median": {"ffmpeg_s": m_f, "tessera_s": m_t, "ratio": m_ratio,
                              "overhead_pct": m_ovh}}, f, indent=2, default=str)
    print(f"   raw results: {results}")

    for msg in failures:
        print("FAILED: " + msg, file=sys.stderr)
    if failures or not frames_ok or not all(v is True for v in verified):
        return 1
    if a.strict and not (ratio_ok and ovh_ok):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
