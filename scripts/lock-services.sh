#!/usr/bin/env bash
# Compile requirements/services/*.lock (one per service image) from their .in files, pinned to
# requirements/dev.lock. Run after changing dev.lock or a service's dependencies: a test
# (tests/images) fails while a service lock pins another version than dev.lock.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/versions.env
uv="${UV:-${RAGPLANE_CACHE:-$HOME/.cache/ragplane}/uv-$UV_VERSION/bin/uv}"
for input in requirements/services/*.in; do
  name=${input%.in}
  overrides=()
  [ -f "$name.overrides" ] && overrides=(--overrides "$name.overrides")
  "$uv" pip compile --quiet --python-version 3.11 "$input" "${overrides[@]}" -o "$name.lock"
done
