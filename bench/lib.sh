# Shared helpers for the bench/ scripts (sourced, not run).
#
# Inputs are built once and cached in $BENCH_CACHE (default bench/.cache, gitignored):
#   slot-<MiB>.img       a Flatcar-like /usr slot: ext4 of real files from /usr/share and /usr/lib
#                        filling the data area, then a dm-verity tree at the Flatcar hash offset
#   slot-<MiB>.roothash  its root hash
#   payload-<MiB>.bin    `payload-writer generate --image=slot-<MiB>.img` (bz2, 1 MiB chunks)
#   payload-<MiB>.bz2    the REPLACE_BZ blobs of that payload, concatenated (a multi-stream .bz2)
# Programs come from a release build in build-bench/ (not the sanitizer build).
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
BENCH_CACHE=${BENCH_CACHE:-$top/bench/.cache}
mkdir -p "$BENCH_CACHE"
PATH=$PATH:/usr/sbin:/sbin

smoke=0 runs=3 size_mib=
bench_parse_args() {
  for a in "$@"; do
    case $a in
      --smoke) smoke=1 ;;
      --mib=*) size_mib=${a#--mib=} ;;  # a slot of this many MiB instead of 1024 (not the Flatcar size)
      --runs=*) runs=${a#--runs=} ;;
      -h|--help) sed -n '2,/^source /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
      *) echo "$(basename "$0"): unknown argument $a" >&2; exit 2 ;;
    esac
  done
  if [ $smoke = 1 ]; then runs=1; fi
}

# bench_size: the slot size in MiB for this run: 1024, --mib=N, or 32 with --smoke
bench_size() {
  if [ -n "$size_mib" ]; then echo "$size_mib"; elif [ $smoke = 1 ]; then echo 32; else echo 1024; fi
}

# BENCH_BUILD_DIR=DIR uses the programs of an existing build instead (the smoke test does, with the
# test build: figures from a sanitizer build mean nothing, only that the scripts work).
bench_build() {
  if [ -n "${BENCH_BUILD_DIR:-}" ]; then
    B=$BENCH_BUILD_DIR/src
  else
    if [ ! -f build-bench/build.ninja ]; then
      # -O2, as distributions build (Debian's dpkg-buildflags, Gentoo/Flatcar): meson's release
      # default, -O3, only makes the programs larger; the hot loops are in libbz2 and OpenSSL.
      meson setup build-bench --buildtype=release -Doptimization=2 -Dtests=false >/dev/null
    fi
    ninja -C build-bench >/dev/null
    B=$top/build-bench/src
  fi
  PAYLOAD_WRITER=$B/payload-writer/payload-writer
  VERITY_CHECK=$B/verity-check/verity-check
}

bench_machine() {
  echo "machine: $(nproc) cpus, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(date -u +%Y-%m-%dT%H:%MZ)"
}

# bench_slot MIB: sets SLOT, ROOT_HASH, HASH_OFFSET, DATA_BLOCKS
bench_slot() {
  local mib=$1 size=$(($1 << 20))
  SLOT=$BENCH_CACHE/slot-$mib.img
  if [ ! -s "$SLOT.roothash" ] || [ ! -f "$SLOT" ]; then
    rm -f "$SLOT" "$SLOT.roothash"
    truncate -s "$size" "$SLOT.tmp"
    # The largest data area that leaves room for the tree (Flatcar's 260094 blocks for 1 GiB).
    local blocks
    blocks=$("$VERITY_CHECK" format "$SLOT.tmp" --json --no-progress 2>/dev/null | sed -n 's/.*"data_blocks": \([0-9]*\).*/\1/p')
    : > "$SLOT.tmp"
    truncate -s "$size" "$SLOT.tmp"
    # Real files: directories of /usr/share and /usr/lib until ~75% of the data area is used
    # (hard links where possible, so nothing is copied).
    local stage=$BENCH_CACHE/stage-$mib budget=$((blocks * 4 * 3 / 4)) used=0 kb d
    rm -rf "$stage"; mkdir -p "$stage/share" "$stage/lib"
    for d in /usr/share/*/ /usr/lib/*/; do
      kb=$(du -sk "$d" 2>/dev/null | cut -f1)
      [ $((used + kb)) -gt $budget ] && continue
      local dst=$stage/share; case $d in /usr/lib/*) dst=$stage/lib ;; esac
      cp -al "$d" "$dst/" 2>/dev/null || cp -a "$d" "$dst/" 2>/dev/null || continue
      used=$((used + kb))
    done
    mkfs.ext4 -q -F -b 4096 -O ^has_journal -d "$stage" "$SLOT.tmp" "$blocks"
    rm -rf "$stage"
    veritysetup format --hash=sha256 --data-block-size=4096 --hash-block-size=4096 \
      --data-blocks="$blocks" --hash-offset=$((blocks * 4096)) "$SLOT.tmp" "$SLOT.tmp" \
      | awk '/^Root hash:/ {print $3}' > "$SLOT.roothash.tmp"
    echo "$blocks" >> "$SLOT.roothash.tmp"
    echo "$((used / 1024))" >> "$SLOT.roothash.tmp"
    mv "$SLOT.tmp" "$SLOT"
    mv "$SLOT.roothash.tmp" "$SLOT.roothash"
  fi
  ROOT_HASH=$(sed -n 1p "$SLOT.roothash")
  DATA_BLOCKS=$(sed -n 2p "$SLOT.roothash")
  HASH_OFFSET=$((DATA_BLOCKS * 4096))
  echo "slot: $SLOT, $mib MiB, ext4 with $(sed -n 3p "$SLOT.roothash") MiB of files from /usr/share and /usr/lib," \
       "$DATA_BLOCKS data blocks, verity root hash $ROOT_HASH"
}

# bench_payload MIB: sets PAYLOAD (the slot's full payload) and BLOBS (its REPLACE_BZ blobs as one .bz2)
bench_payload() {
  bench_slot "$1"
  PAYLOAD=$BENCH_CACHE/payload-$1.bin
  BLOBS=$BENCH_CACHE/payload-$1.bz2
  if [ ! -s "$PAYLOAD" ] || [ ! -s "$BLOBS" ] || [ "$PAYLOAD" -ot "$SLOT" ]; then
    rm -f "$PAYLOAD" "$BLOBS"
    "$PAYLOAD_WRITER" generate --image="$SLOT" --output="$PAYLOAD.tmp" >/dev/null 2>&1
    "$PAYLOAD_WRITER" inspect --json "$PAYLOAD.tmp" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
base = d["metadata_size"]
with open(sys.argv[1], "rb") as f, open(sys.argv[2], "wb") as out:
    for op in d["manifest"]["partition_operations"]:
        if op["type"] == "REPLACE_BZ":
            f.seek(base + op["data_offset"])
            out.write(f.read(op["data_length"]))
' "$PAYLOAD.tmp" "$BLOBS.tmp"
    mv "$BLOBS.tmp" "$BLOBS"
    mv "$PAYLOAD.tmp" "$PAYLOAD"
  fi
  echo "payload: $PAYLOAD, $(stat -c %s "$PAYLOAD") bytes; REPLACE_BZ blobs: $(stat -c %s "$BLOBS") bytes"
}

# bench_time VAR CMD...: runs CMD, appends its wall seconds to the array VAR
bench_time() {
  local var=$1; shift
  local t0 t1
  t0=$(date +%s.%N)
  "$@"
  t1=$(date +%s.%N)
  eval "$var+=(\$(echo \"$t1 - $t0\" | bc -l))"
}

# median of the arguments
bench_median() {
  printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'
}

bench_ratio() {
  printf 'ratio=%.3f\n' "$(echo "$1 / $2" | bc -l)"
}
