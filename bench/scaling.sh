#!/usr/bin/env bash
# bench/scaling.sh: one encode on one worker container vs two, each pinned
# to its own core.
#
# A server container (`tessera server --slots 0`: every attempt goes to
# workers) and, per run, either one worker container pinned to core 0 or two
# pinned to cores 0 and 1, one slot each. All share the data directory by a
# bind mount at the same path. Each run uploads the 720p clip over HTTP,
# submits its encode (POST /api/v1/projects/video/encodes), waits (bounded),
# downloads the output and checks it with `tessera verify`. 1-worker and
# 2-worker runs alternate (1 2, 2 1, 1 2, ...) BENCH_ROUNDS times. Printed:
# each run's encode wall time (the job's finished_at - created_at, server
# clock), the cpu the worker containers used (their cgroups), the medians
# and the speedup (median 1-worker wall / median 2-worker wall; target
# >= 1.8). The server container is not pinned; with --slots 0 it only
# schedules (probe, plan, chunks, concat and verify all run on workers).
#
# The machine must have 2 cores and nothing else heavy running: the
# 2-worker side needs both cores, so other load decides the figure. The
# load average is printed before each run.
#
# Environment (all optional):
#   BENCH_ROUNDS=3          rounds (each runs 1 worker once and 2 workers once)
#   BENCH_SECONDS=20        clip length in seconds (720p30, as bench/encode.sh)
#   BENCH_NOISE=8           noise strength of the clip (0 = clean testsrc2)
#   BENCH_CODEC=x264 BENCH_CRF=23 BENCH_PRESET=medium BENCH_CHUNK_SECONDS=2
#   BENCH_TIMEOUT=1800      per-run limit in seconds
#   BENCH_OUT=bench/out     work/cache directory (gitignored)
#   BENCH_KEEP=0            1: keep the run directory (data dir, logs); a failed
#                           run always keeps it
#   TESSERA=<path>          use this binary instead of building target/release/tessera
#   TESSERA_IMAGE=tessera-local:bench the tag deploy/image/build-rootfs.sh builds here
#   BENCH_DATA=shared       http: the workers get no bind mount and run with
#                           `--data http` (they fetch inputs and send outputs
#                           over HTTP); every run then also prints, over its
#                           chunks, encode time beside transfer time and bytes
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

rounds="${BENCH_ROUNDS:-3}"
seconds="${BENCH_SECONDS:-20}"
noise="${BENCH_NOISE:-8}"
codec="${BENCH_CODEC:-x264}"
crf="${BENCH_CRF:-23}"
preset="${BENCH_PRESET:-medium}"
chunk="${BENCH_CHUNK_SECONDS:-2}"
timeout="${BENCH_TIMEOUT:-1800}"
out="${BENCH_OUT:-$here/out}"
keep="${BENCH_KEEP:-0}"
data_mode="${BENCH_DATA:-shared}"
[[ "$data_mode" == shared || "$data_mode" == http ]] || { echo "scaling: BENCH_DATA is shared or http" >&2; exit 2; }
# Its own tag, so a run never swaps the image the tests use under them.
image="${TESSERA_IMAGE:-tessera-local:bench}"

die() {
    echo "scaling: $*" >&2
    exit 2
}

for tool in docker curl jq ffmpeg; do
    command -v "$tool" >/dev/null || die "$tool not found on PATH"
done
[[ "$rounds" =~ ^[0-9]+$ && "$rounds" -gt 0 ]] || die "BENCH_ROUNDS must be a positive integer"
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -gt 0 ]] || die "BENCH_SECONDS must be a positive integer"
[[ "$noise" =~ ^[0-9]+$ ]] || die "BENCH_NOISE must be a non-negative integer"
[[ "$timeout" =~ ^[0-9]+$ && "$timeout" -gt 0 ]] || die "BENCH_TIMEOUT must be a positive integer"
[[ "$(nproc --all)" -ge 2 ]] || die "needs 2 cores to pin two workers to (this machine has $(nproc --all))"
docker info >/dev/null 2>&1 || die "no Docker engine answers (is dockerd running?)"

mkdir -p "$out"
out="$(cd "$out" && pwd)"

# 1. The clip (the same cache as bench/encode.sh).
src="$out/src-720p30-${seconds}s-noise${noise}.mp4"
if [[ ! -s "$src" ]]; then
    echo "scaling: generating $src" >&2
    vf=()
    if [[ "$noise" -gt 0 ]]; then vf=(-vf "noise=alls=${noise}:allf=t:all_seed=42"); fi
    ffmpeg -nostdin -hide_banner -v error -y \
        -f lavfi -i "testsrc2=size=1280x720:rate=30" \
        -f lavfi -i "sine=frequency=440:sample_rate=48000" \
        -t "$seconds" "${vf[@]}" \
        -c:v libx264 -preset veryfast -g 60 -pix_fmt yuv420p \
        -c:a aac -shortest "$src.tmp.mp4"
    mv "$src.tmp.mp4" "$src"
fi

# 2. The binary and the image.
if [[ -n "${TESSERA:-}" ]]; then
    tessera="$TESSERA"
else
    echo "scaling: cargo build --release -p tessera-cli" >&2
    (cd "$repo" && cargo build --release -p tessera-cli) >&2 || die "tessera build failed"
    tessera="${CARGO_TARGET_DIR:-$repo/target}/release/tessera"
fi
[[ -x "$tessera" ]] || die "no tessera binary at $tessera"
TESSERA_IMAGE="$image" "$repo/deploy/image/build-rootfs.sh" "$tessera" >&2 || die "image build failed"

# 3. A run directory, mounted at the same path in every container, and
# cleanup of everything this script starts, however it ends.
run="$(mktemp -d "$out/scaling.XXXXXX")"
chmod 755 "$run"
data="$run/data"
prefix="tessera-scaling-$$"
net="$prefix-net"
label="tessera.bench=$prefix"
cleanup() {
    local status=$? ids
    ids="$(docker ps -aq --filter "label=$label" 2>/dev/null || true)"
    if [[ -n "$ids" ]]; then
        # Logs first, for a failed run.
        for id in $ids; do
            docker logs --tail 200 "$id" >"$run/$(docker inspect -f '{{.Name}}' "$id" | tr -d /).log" 2>&1 || true
        done
        # shellcheck disable=SC2086
        docker rm -f $ids >/dev/null 2>&1 || true
    fi
    docker network rm "$net" >/dev/null 2>&1 || true
    if [[ "$keep" == 1 || "$status" != 0 ]]; then
        echo "scaling: kept $run (data dir, container logs)" >&2
    else
        rm -rf "$run"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

user="$(id -u):$(id -g)"
key="$("$tessera" admin create-user bench --admin --project video --data-dir "$data")"
tokens=()
for i in 0 1; do
    tokens+=("$("$tessera" admin create-worker-token "w$i" --data-dir "$data")")
done
docker network create --label "$label" "$net" >/dev/null

container() { # NAME DOCKER-OPTS... -- TESSERA-ARGS...
    local name="$1"
    shift
    local opts=()
    while [[ "$1" != -- ]]; do
        opts+=("$1")
        shift
    done
    shift
    docker run -d --name "$prefix-$name" --label "$label" --network "$net" \
        --user "$user" -v "$run:$run" "${opts[@]}" "$image" tessera "$@" >/dev/null
}

container server -p 127.0.0.1::6543 -- server --listen 0.0.0.0:6543 --data-dir "$data" --slots 0
url=""
for _ in $(seq 100); do
    addr="$(docker port "$prefix-server" 6543/tcp 2>/dev/null | grep '^127\.0\.0\.1:' | head -1 || true)"
    if [[ -n "$addr" ]] && curl -fsS -m 2 -H "Authorization: Bearer $key" "http://$addr/api/v1/nodes" >/dev/null 2>&1; then
        url="http://$addr"
        break
    fi
    sleep 0.2
done
[[ -n "$url" ]] || die "the server container did not answer within 20 s (logs: docker logs $prefix-server)"

api() { # METHOD PATH [curl args...]
    local method="$1" path="$2"
    shift 2
    curl -fsS -m 120 -X "$method" -H "Authorization: Bearer $key" "$@" "$url/api/v1$path"
}

# cpu seconds a container's cgroup used so far ("nan" if its cgroup is not
# where cgroup v1 (cgroupfs) or v2 keeps it).
container_cpu() {
    local id f
    id="$(docker inspect -f '{{.Id}}' "$1")"
    for f in "/sys/fs/cgroup/cpuacct/docker/$id/cpuacct.usage" \
        "/sys/fs/cgroup/cpu,cpuacct/docker/$id/cpuacct.usage"; do
        if [[ -r "$f" ]]; then
            awk '{ printf "%.2f", $1 / 1e9 }' "$f"
            return
        fi
    done
    for f in "/sys/fs/cgroup/system.slice/docker-$id.scope/cpu.stat" "/sys/fs/cgroup/docker/$id/cpu.stat"; do
        if [[ -r "$f" ]]; then
            awk '$1 == "usage_usec" { printf "%.2f", $2 / 1e6 }' "$f"
            return
        fi
    done
    echo nan
}

ready_count() {
    api GET /nodes | jq '[.nodes[] | select(.state == "ready")] | length'
}

# Over a job's succeeded chunk attempts: encode (process) time beside the
# time and bytes spent moving their files (0 with a shared filesystem).
chunk_report() { # JOB TAG
    local tasks attempts
    tasks="$(api GET "/jobs/$1/tasks?limit=10000")"
    attempts="$(api GET "/jobs/$1/attempts?limit=10000")"
    jq -nr --arg tag "$2" --argjson t "$tasks" --argjson a "$attempts" '
        ($t | map({key: (.index | tostring), value: .name}) | from_entries) as $names
        | [$a[] | select(.outcome == "succeeded")
            | select($names[.task | tostring] | startswith("encode-chunk-"))
            | {w: .usage.wall_ms, x: (.usage.transfer_ms // 0), b: (.usage.transfer_bytes // 0)}]
        | (map(.w) | add) as $w | (map(.x) | add) as $x | (map(.b) | add) as $b
        | "\($tag): \(length) chunks, encode \($w) ms, transfer \($x) ms (\(if $w > 0 then ($x * 1000 / $w | floor) / 10 else 0 end)% of encode), \($b) bytes moved"'
}

# One run with N workers: sets run_wall, run_cpu and run_server_cpu (s).
one_run() {
    local n="$1" tag="$2" i up job t0 state v
    for ((i = 0; i < n; i++)); do
        if [[ "$data_mode" == http ]]; then
            # Nothing mounted: the worker keeps its own copies at the
            # server's paths (as root, so it can create them).
            docker run -d --name "$prefix-w$i" --label "$label" --network "$net" \
                --cpuset-cpus "$i" -e "TESSERA_WORKER_TOKEN=${tokens[$i]}" "$image" tessera \
                worker --server "http://$prefix-server:6543" --name "w$i" --slots 1 --grace 0 \
                --data http --min-free-mb 64 >/dev/null
        else
            container "w$i" --cpuset-cpus "$i" -e "TESSERA_WORKER_TOKEN=${tokens[$i]}" -- \
                worker --server "http://$prefix-server:6543" --name "w$i" --slots 1 --grace 0 --data-dir "$data"
        fi
    done
    t0=$SECONDS
    until [[ "$(ready_count)" == "$n" ]]; do
        ((SECONDS - t0 < 30)) || die "$tag: $n workers did not register within 30 s (ready: $(ready_count))"
        sleep 0.1
    done
    up="$(api POST "/projects/video/uploads?name=clip.mp4" --data-binary "@$src" | jq -r .upload)"
    local server_cpu0
    server_cpu0="$(container_cpu "$prefix-server")"
    job="$(api POST /projects/video/encodes -H 'Content-Type: application/json' -d "$(jq -nc \
        --arg up "$up" --arg codec "$codec" --argjson crf "$crf" --arg preset "$preset" --argjson chunk "$chunk" \
        '{upload: $up, codec: $codec, crf: $crf, preset: $preset, container: "mp4", chunk_seconds: $chunk}')" | jq -r .id)"
    [[ "$job" =~ ^[0-9]+$ ]] || die "$tag: the encode was not accepted ($job)"
    t0=$SECONDS
    while :; do
        v="$(api GET "/jobs/$job")"
        state="$(jq -r .state <<<"$v")"
        case "$state" in
        succeeded) break ;;
        failed | cancelled) die "$tag: job $job ended $state: $v" ;;
        esac
        ((SECONDS - t0 < timeout)) || die "$tag: job $job did not end within $timeout s"
        sleep 0.5
    done
    local wall cpu=0 c server_cpu
    wall="$(jq -r '(.finished_at - .created_at) / 1000' <<<"$v")"
    for ((i = 0; i < n; i++)); do
        c="$(container_cpu "$prefix-w$i")"
        cpu="$(awk -v a="$cpu" -v b="$c" 'BEGIN { if (b == "nan") print "nan"; else printf "%.2f", a + b }')"
    done
    server_cpu="$(awk -v a="$(container_cpu "$prefix-server")" -v b="$server_cpu0" \
        'BEGIN { if (a == "nan") print "nan"; else printf "%.2f", a - b }')"
    for ((i = 0; i < n; i++)); do
        docker stop -t 10 "$prefix-w$i" >/dev/null
        docker rm -f "$prefix-w$i" >/dev/null
    done
    chunk_report "$job" "$tag" >>"$run/chunks.txt"
    local result="$run/out-$tag.mp4"
    api GET "/jobs/$job/output" -o "$result"
    "$tessera" verify "$src" "$result" >"$run/verify-$tag.txt" 2>&1 ||
        die "$tag: tessera verify failed: $(tail -3 "$run/verify-$tag.txt")"
    rm -f "$result"
    run_wall="$wall" run_cpu="$cpu" run_server_cpu="$server_cpu"
}

echo "scaling: $codec crf $crf preset $preset, ${seconds}s 720p30 clip (noise $noise), ${chunk}s chunks, $rounds rounds"
printf '%-6s %-8s %9s %9s %7s %11s  %s\n' round workers "wall s" "cpu s" "cpu %" "server cpu" "load avg before"
walls1=() walls2=() cpus1=() cpus2=() ratios=()
for ((r = 1; r <= rounds; r++)); do
    if ((r % 2)); then order=(1 2); else order=(2 1); fi
    for n in "${order[@]}"; do
        load="$(cut -d' ' -f1-3 /proc/loadavg)"
        one_run "$n" "r$r-w$n"
        wall="$run_wall" cpu="$run_cpu" server_cpu="$run_server_cpu"
        pct="$(awk -v c="$cpu" -v w="$wall" 'BEGIN { if (c == "nan") print "nan"; else printf "%.0f", 100 * c / w }')"
        printf '%-6s %-8s %9.2f %9s %7s %11s  %s\n' "$r" "$n" "$wall" "$cpu" "$pct" "$server_cpu" "$load"
        if [[ "$n" == 1 ]]; then
            w1="$wall" walls1+=("$wall") cpus1+=("$cpu")
        else
            w2="$wall" walls2+=("$wall") cpus2+=("$cpu")
        fi
    done
    ratios+=("$(awk -v a="$w1" -v b="$w2" 'BEGIN { printf "%.3f", a / b }')")
done

median() { printf '%s\n' "$@" | grep -v nan | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
m1="$(median "${walls1[@]}")"
m2="$(median "${walls2[@]}")"
c1="$(median "${cpus1[@]}")"
c2="$(median "${cpus2[@]}")"
echo
echo "median wall: 1 worker $m1 s, 2 workers $m2 s"
echo "median cpu:  1 worker $c1 s ($(awk -v c="$c1" -v w="$m1" 'BEGIN { printf "%.0f", 100 * c / w }')% of a core), 2 workers $c2 s ($(awk -v c="$c2" -v w="$m2" 'BEGIN { printf "%.0f", 100 * c / w }')%)"
echo "per-chunk data ($data_mode filesystem):"
sed 's/^/  /' "$run/chunks.txt"
echo "speedup (median 1-worker wall / median 2-worker wall): $(awk -v a="$m1" -v b="$m2" 'BEGIN { printf "%.2f", a / b }')x  (target >= 1.8)"
echo "median of per-round ratios: $(median "${ratios[@]}")x  (rounds: ${ratios[*]})"
