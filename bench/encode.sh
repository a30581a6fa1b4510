#!/usr/bin/env bash
# bench/encode.sh: Tessera encode benchmark against single-process ffmpeg.
#
# Measures the wall time of one whole `tessera encode` (probe, plan,
# parallel chunk encodes, audio, concat, verify) and of the same encode
# done by one plain ffmpeg process (which uses all cores by default). Both run
# in the same round, one after the other, and the order swaps every round
# (A B, B A, A B, ...) so drift on a noisy machine hits both sides equally.
# It reports per-run times, medians, the median per-round ratio tessera/ffmpeg
# (target <= 1.00) and the median overhead_pct from tessera's --report-json
# (target <= 3 %). Absolute times on a shared 2-core box mean little: read the
# ratios.
#
# Source clip (made once, cached in bench/out/): 1280x720 30 fps testsrc2
# with 48 kHz sine audio (AAC), H.264 veryfast, GOP 60 (2 s). testsrc2 alone
# is mostly flat colour that x264 medium encodes at ~2x real-footage speed,
# which would flatter per-chunk fixed costs (process start, lookahead ramp)
# and hide encoder work. So by default we add temporal luma+chroma noise
# (noise=alls=8:allf=t, fixed seed): x264 medium then spends its time in
# motion search/RDO like on grainy camera footage (~5 Mbit/s at CRF 23, about
# 2.5x slower than clean testsrc2; alls=16 would be ~35 Mbit/s, unrealistic).
# BENCH_NOISE=0 gives the clean pattern.
#
# Environment (all optional):
#   BENCH_SECONDS=20        source length in seconds
#   BENCH_NOISE=8           noise strength (0 = none)
#   BENCH_ROUNDS=5          rounds (each runs ffmpeg once and tessera once)
#   BENCH_CODEC=x264        x264 | x265 | svt-av1 | vp9 | ffv1
#   BENCH_CRF=<per codec>   x264 23, x265 28, svt-av1 35, vp9 32, ffv1 none
#   BENCH_PRESET=<per codec> x264/x265 medium, svt-av1 8, vp9 4 (cpu-used)
#   BENCH_EXT=mp4           output container (mkv for ffv1)
#   BENCH_TESSERA_ARGS=""   extra tessera args, e.g. "--jobs 2 --chunk-seconds 4"
#   BENCH_FFMPEG_ARGS=""    extra args for the ffmpeg baseline, e.g. "-threads 2"
#   BENCH_QUALITY=1         also measure PSNR/SSIM of both outputs vs the source
#   BENCH_TIMEOUT=1800      per-run timeout in seconds
#   BENCH_STRICT=0          1: exit 1 when a target is missed
#   BENCH_OUT=bench/out     work/cache directory (gitignored)
#   TESSERA=<path>          use this binary instead of building target/release/tessera
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

seconds="${BENCH_SECONDS:-20}"
noise="${BENCH_NOISE:-8}"
rounds="${BENCH_ROUNDS:-5}"
codec="${BENCH_CODEC:-x264}"
quality="${BENCH_QUALITY:-1}"
timeout="${BENCH_TIMEOUT:-1800}"
strict="${BENCH_STRICT:-0}"
out="${BENCH_OUT:-$here/out}"

die() {
    echo "bench: $*" >&2
    exit 2
}

for tool in ffmpeg ffprobe python3; do
    command -v "$tool" >/dev/null || die "$tool not found on PATH"
done
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -gt 0 ]] || die "BENCH_SECONDS must be a positive integer"
[[ "$noise" =~ ^[0-9]+$ ]] || die "BENCH_NOISE must be a non-negative integer"
[[ "$rounds" =~ ^[0-9]+$ && "$rounds" -gt 0 ]] || die "BENCH_ROUNDS must be a positive integer"

# Encoder settings: the ffmpeg baseline mirrors what tessera passes per chunk
# (crates/media/src/args.rs codec_args) minus the per-chunk thread limits.
ext_default=mp4
pre=() post=() preset_flag=-preset
case "$codec" in
x264)
    vcodec=libx264 crf="${BENCH_CRF-23}" preset="${BENCH_PRESET-medium}"
    ;;
x265)
    vcodec=libx265 crf="${BENCH_CRF-28}" preset="${BENCH_PRESET-medium}"
    post=(-x265-params log-level=error)
    ;;
svt-av1)
    vcodec=libsvtav1 crf="${BENCH_CRF-35}" preset="${BENCH_PRESET-8}"
    ;;
vp9)
    vcodec=libvpx-vp9 crf="${BENCH_CRF-32}" preset="${BENCH_PRESET-4}"
    pre=(-b:v 0) post=(-row-mt 1 -deadline good) preset_flag=-cpu-used
    ;;
ffv1)
    vcodec=ffv1 crf="" preset=""
    post=(-level 3 -slicecrc 1 -g 1)
    ext_default=mkv
    ;;
*) die "unknown BENCH_CODEC '$codec' (x264, x265, svt-av1, vp9, ffv1)" ;;
esac
venc=(-c:v "$vcodec" "${pre[@]}")
if [[ -n "$crf" ]]; then venc+=(-crf "$crf"); fi
if [[ -n "$preset" ]]; then venc+=("$preset_flag" "$preset"); fi
venc+=("${post[@]}")
ext="${BENCH_EXT:-$ext_default}"

read -r -a tessera_extra <<<"${BENCH_TESSERA_ARGS:-}"
read -r -a ffmpeg_extra <<<"${BENCH_FFMPEG_ARGS:-}"

mkdir -p "$out"

# 1. Source clip, cached by its parameters.
src="$out/src-720p30-${seconds}s-noise${noise}.mp4"
if [[ ! -s "$src" ]]; then
    echo "bench: generating $src" >&2
    vf=()
    if [[ "$noise" -gt 0 ]]; then
        vf=(-vf "noise=alls=${noise}:allf=t:all_seed=42")
    fi
    ffmpeg -nostdin -hide_banner -v error -y \
        -f lavfi -i "testsrc2=size=1280x720:rate=30" \
        -f lavfi -i "sine=frequency=440:sample_rate=48000" \
        -t "$seconds" "${vf[@]}" \
        -c:v libx264 -preset veryfast -g 60 -pix_fmt yuv420p \
        -c:a aac -shortest "$src.tmp.mp4"
    mv "$src.tmp.mp4" "$src"
fi

# 2. The tessera binary.
if [[ -n "${TESSERA:-}" ]]; then
    tessera="$TESSERA"
else
    echo "bench: cargo build --release -p tessera-cli" >&2
    (cd "$repo" && cargo build --release -p tessera-cli) >&2 || die "tessera build failed"
    tessera="$repo/target/release/tessera"
fi
[[ -x "$tessera" ]] || die "no tessera binary at $tessera"

# 3. Command lines. {state_dir} and {report} are filled in per run.
out_ffmpeg="$out/out-ffmpeg.$ext"
out_tessera="$out/out-tessera.$ext"
ffmpeg_cmd=(ffmpeg -nostdin -hide_banner -y -i "$src" "${venc[@]}" -c:a copy "${ffmpeg_extra[@]}" "$out_ffmpeg")
tessera_cmd=("$tessera" encode "$src" -o "$out_tessera" --codec "$codec")
if [[ -n "$crf" ]]; then tessera_cmd+=(--crf "$crf"); fi
if [[ -n "$preset" ]]; then tessera_cmd+=(--preset "$preset"); fi
tessera_cmd+=(-y --state-dir "{state_dir}" --report-json "{report}" "${tessera_extra[@]}")

printf '%s\0' "${ffmpeg_cmd[@]}" >"$out/ffmpeg.argv"
printf '%s\0' "${tessera_cmd[@]}" >"$out/tessera.argv"

# Warm the page cache so the first run does not pay for reading the source.
cat "$src" >/dev/null

# 4. Alternating runs, table, medians, checks.
args=(
    --rounds "$rounds" --out "$out" --src "$src"
    --ffmpeg-argv "$out/ffmpeg.argv" --tessera-argv "$out/tessera.argv"
    --ffmpeg-output "$out_ffmpeg" --tessera-output "$out_tessera"
    --timeout "$timeout" --label "codec=$codec crf=${crf:-n/a} preset=${preset:-n/a} src=${seconds}s noise=$noise"
)
if [[ "$quality" == 1 ]]; then args+=(--quality); fi
if [[ "$strict" == 1 ]]; then args+=(--strict); fi
exec python3 "$here/encode_bench.py" "${args[@]}"
