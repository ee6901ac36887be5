#!/usr/bin/env bash
# Install what the tests need beyond scripts/install.sh: the gRPC tools (grpcurl,
# grpc_health_probe), toxiproxy for network faults, helm and promtool for the chart, each built
# once with go install, cached under $RAGPLANE_CACHE/bin and linked into .bin/. Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/versions.env
CACHE="${RAGPLANE_CACHE:-$HOME/.cache/ragplane}"
mkdir -p "$CACHE/bin" .bin
source scripts/lib.sh

go_tool "$GRPCURL_MODULE" "$GRPCURL_VERSION" grpcurl
go_tool "$GRPC_HEALTH_PROBE_MODULE" "$GRPC_HEALTH_PROBE_VERSION" grpc_health_probe
go_tool "$TOXIPROXY_MODULE" "$TOXIPROXY_VERSION" toxiproxy-server
go_tool "$HELM_MODULE" "$HELM_VERSION" helm
go_tool "$PROMTOOL_MODULE" "$PROMTOOL_VERSION" promtool
go_tool "$COREDNS_MODULE" "$COREDNS_VERSION" coredns
install_report
