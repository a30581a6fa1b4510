#!/usr/bin/env bash
# Builds the Tessera + ffmpeg image from this machine's own binaries, with no
# registry and no network: a root filesystem holding tessera, ffmpeg,
# ffprobe, a shell (dash, or busybox) and a few coreutils, each with the
# shared libraries `ldd` lists, is assembled in a temporary directory and
# `docker import`ed. For real deployments use the Dockerfile beside this
# script instead.
#
# Usage: deploy/image/build-rootfs.sh [TESSERA_BINARY]
#   TESSERA_BINARY  default: target/release/tessera, else target/debug/tessera
#   TESSERA_IMAGE   the tag to build (default tessera-local:dev)
#
# Idempotent and quick when nothing changed: the image carries a label
# `tessera.rootfs` with a fingerprint of its inputs (each file's path, size
# and modification time, and this script), and a build whose fingerprint
# matches the existing image's does nothing. Concurrent runs take turns.
set -euo pipefail

image=${TESSERA_IMAGE:-tessera-local:dev}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

die() {
  echo "build-rootfs: $*" >&2
  exit 1
}

tessera=${1:-}
if [[ -z $tessera ]]; then
  for candidate in "$repo/target/release/tessera" "$repo/target/debug/tessera"; do
    if [[ -x $candidate ]]; then
      tessera=$candidate
      break
    fi
  done
  [[ -n $tessera ]] || die "no tessera binary in $repo/target: run 'cargo build -p tessera-cli' or pass its path"
fi
[[ -f $tessera && -x $tessera ]] || die "$tessera is not an executable file"
tessera=$(realpath "$tessera")
command -v docker >/dev/null || die "docker not found: install Docker (apt-get install docker.io)"

# Programs copied into /usr/bin under their own names.
find_program() {
  type -P "$1" || die "$1 not found on this machine: install it (apt-get install $2)"
}
programs=("$(find_program ffmpeg ffmpeg)" "$(find_program ffprobe ffmpeg)")
for tool in cat echo sleep id true false ls mkdir rm cp mv env head tail wc; do
  programs+=("$(find_program "$tool" coreutils)")
done
if shell=$(type -P dash); then
  shell_name=dash
elif shell=$(type -P busybox); then
  shell_name=busybox
else
  die "no dash or busybox on this machine: install one (apt-get install dash)"
fi
programs+=("$shell")

# Every shared object the programs load, as `ldd` names them (the path the
# dynamic loader will look for) and including the loader itself.
libraries() {
  ldd "$@" 2>/dev/null | awk '
    $2 == "=>" && $3 ~ /^\// { print $3 }
    $1 ~ /^\// && $2 ~ /^\(0x/ { print $1 }' | sort -u
}
mapfile -t libs < <(libraries "$tessera" "${programs[@]}")
((${#libs[@]})) || die "ldd found no libraries for $tessera: is it a dynamically linked Linux binary?"

fingerprint=$(
  {
    sha256sum "${BASH_SOURCE[0]}"
    stat -L -c '%n %s %Y' "$tessera" "${programs[@]}" "${libs[@]}"
  } | sha256sum | cut -c1-32
)

lock=${TMPDIR:-/tmp}/tessera-build-rootfs.lock
exec 9>"$lock"
flock 9

current=$(docker image inspect -f '{{index .Config.Labels "tessera.rootfs"}}' "$image" 2>/dev/null || true)
previous_id=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
if [[ $current == "$fingerprint" ]]; then
  echo "build-rootfs: $image is up to date ($fingerprint)"
  exit 0
fi

root=$(mktemp -d "${TMPDIR:-/tmp}/tessera-rootfs.XXXXXX")
trap 'rm -rf "$root"' EXIT

# Debian's merged /usr layout: /bin, /lib, /lib64 and /sbin point into /usr.
mkdir -p "$root"/usr/{bin,sbin,lib,lib64,local/bin} "$root"/{etc,tmp,root,proc,sys,dev}
for dir in bin sbin lib lib64; do
  ln -s "usr/$dir" "$root/$dir"
done
chmod 1777 "$root/tmp"
chmod 700 "$root/root"

# A file goes where its path points on this machine, inside the rootfs,
# with symlinks resolved (so /lib/x/libfoo.so.1 lands in usr/lib/x).
place() {
  local src=$1 dest_dir
  dest_dir=$root$(realpath "$(dirname "$src")")
  mkdir -p "$dest_dir"
  cp -L "$src" "$dest_dir/$(basename "$src")"
}
for lib in "${libs[@]}"; do
  place "$lib"
done
for program in "${programs[@]}"; do
  cp -L "$program" "$root/usr/bin/$(basename "$program")"
done
if [[ $shell_name == busybox ]]; then
  ln -sf busybox "$root/usr/bin/sh"
else
  ln -sf dash "$root/usr/bin/sh"
fi
# Debug information is most of a debug build's size and useless in here.
if command -v strip >/dev/null; then
  strip --strip-debug -o "$root/usr/local/bin/tessera" "$tessera"
else
  cp "$tessera" "$root/usr/local/bin/tessera"
fi

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
tessera:x:1000:1000:tessera:/tmp:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
tessera:x:1000:
nogroup:x:65534:
EOF
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"

echo "build-rootfs: importing $image ($(du -sh "$root" | cut -f1), fingerprint $fingerprint)"
tar -C "$root" --numeric-owner -cf - . |
  docker import \
    --change "LABEL tessera.rootfs=$fingerprint" \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    --change 'WORKDIR /' \
    --change 'CMD ["/usr/local/bin/tessera", "--help"]' \
    - "$image" >/dev/null
# The image this one replaced, now untagged, unless a container still uses it.
if [[ -n $previous_id ]]; then
  docker image rm "$previous_id" >/dev/null 2>&1 || true
fi
echo "build-rootfs: built $image"
