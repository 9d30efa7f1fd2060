#!/bin/sh
# Copies every Omaha response fixture into OUTDIR as a seed for fuzz-omaha-response.
set -eu
out=$1
here=$(cd "$(dirname "$0")" && pwd)
shared=${SWITCHYARD_SHARED_DIR:-$here/../../../shared}
[ -d "$shared/fixtures/omaha" ] || shared=/work/shared
mkdir -p "$out"
cp "$here"/corpus/fuzz-omaha-response/* "$out"/ 2>/dev/null || true
for f in "$shared"/fixtures/omaha/derived/nebraska-*.xml "$shared"/fixtures/omaha/go-omaha/*response*.xml \
         "$shared"/fixtures/omaha/ue-rs/omaha-response-example.xml; do
  [ -f "$f" ] && cp "$f" "$out/$(basename "$(dirname "$f")")-$(basename "$f")"
done
exit 0
