#!/bin/bash
# Seeds for fuzz-gpt: small GPT disks made with sfdisk (and a torn/damaged variant of each), 100 KiB each.
set -euo pipefail
out=$1
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
make() {
  local name=$1; shift
  truncate -s 100K "$tmp/$name"
  printf '%s\n' "label: gpt" "unit: sectors" "first-lba: 34" "$@" | \
    sfdisk --no-reread --no-tell-kernel -q "$tmp/$name" >/dev/null
  cp "$tmp/$name" "$out/$name"
  # primary header damaged: the backup must be used
  cp "$tmp/$name" "$out/$name-primary-damaged"
  printf '\xff' | dd of="$out/$name-primary-damaged" bs=1 seek=600 conv=notrunc status=none
}
make flatcar \
  'start=40, size=8, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI-SYSTEM"' \
  'start=48, size=8, type=21686148-6449-6E6F-744E-656564454649, name="BIOS-BOOT"' \
  'start=56, size=16, type=5DFBF5F4-2848-4BAC-AA5E-0D9A20B745A6, name="USR-A", uuid=7130C94A-213A-4E5A-8E26-6CCE9662F132, attrs="GUID:48,56"' \
  'start=72, size=16, type=5DFBF5F4-2848-4BAC-AA5E-0D9A20B745A6, name="USR-B", uuid=E03DD35C-7C2D-4A47-B3FE-27F15780A57C, attrs="GUID:49,52"' \
  'start=96, size=8, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="OEM"'
make one 'start=40, size=100, type=5DFBF5F4-2848-4BAC-AA5E-0D9A20B745A6, name="ROOT-A", attrs="GUID:50,51,56"'
