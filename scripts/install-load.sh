#!/usr/bin/env bash
# Install what `make load` needs beyond `make install`: ghz, and CoreDNS for the profile on a stack
# with replicas, each built once with go install and cached under $RAGPLANE_CACHE/bin, linked into
# .bin/. Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/versions.env
CACHE="${RAGPLANE_CACHE:-$HOME/.cache/ragplane}"
mkdir -p "$CACHE/bin" .bin
source scripts/lib.sh
go_tool "$GHZ_MODULE" "$GHZ_VERSION" ghz
go_tool "$COREDNS_MODULE" "$COREDNS_VERSION" coredns
