#!/bin/bash
# Generates seeds for fuzz-verity with veritysetup (small blocks keep them small): a u32 LE hash
# offset in 512-byte units, then the slot image.
set -euo pipefail
out=$1
command -v veritysetup >/dev/null || PATH=$PATH:/usr/sbin
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
for blocks in 1 3 9 70; do
  for bs in 512 1024; do
    img=$tmp/img
    head -c $((blocks * bs)) /dev/urandom > "$img"
    veritysetup format --data-block-size=$bs --hash-block-size=$bs --data-blocks=$blocks \
      --hash-offset=$((blocks * bs)) "$img" "$img" >/dev/null
    units=$((blocks * bs / 512))
    { printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((units & 255)) $((units >> 8 & 255)) 0 0)"; cat "$img"; } \
      > "$out/seed-$blocks-$bs"
    n=$((n + 1))
  done
done
echo "$n seeds in $out"
