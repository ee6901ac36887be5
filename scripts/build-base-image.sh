#!/usr/bin/env bash
# Make the base image every ragplane image builds FROM, once: Debian bookworm's minimal system
# with Python 3.11 (scripts/versions.env), from Debian's packages with mmdebstrap, imported into
# podman. No registry for base images is reachable here. Skipped while the image exists.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/versions.env
CACHE="${RAGPLANE_CACHE:-$HOME/.cache/ragplane}"
source scripts/lib.sh

base=$(base_image)
if ! podman image exists "$base"; then
  step "making the base image $base with mmdebstrap"
  mmdebstrap --quiet --variant=minbase --include="$BASE_PACKAGES" "$BASE_SUITE" - |
    podman import --quiet - "$base" >/dev/null
  step_done
fi
install_report
