#!/usr/bin/env bash
# Install what the tests need beyond scripts/install.sh: the gRPC tools (grpcurl,
# grpc_health_probe), toxiproxy for network faults, helm and promtool for the chart, each built
# once with go install, cached under $RAGPLANE_CACHE/bin and linked into .bin/; kube-apiserver
# and etcd for the chart's test on a real API server; podman, runc
# and mmdebstrap from Debian to build and run the images (tests/images). Safe to rerun.
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
debian_packages podman=podman runc=runc mmdebstrap=mmdebstrap

# kube-apiserver and etcd: their own go.mod files replace sibling modules with local paths, so
# `go install module@version` refuses them; each is built from a small wrapper module
# (scripts/kube/NAME/main.go) whose go.mod is written here from the pinned versions.
# kube-apiserver takes 9 minutes cold on 2 idle cores (40 on a busy machine).

# wrapper_build NAME EDIT LDFLAGS REQUIRE OUT: go build scripts/kube/NAME into OUT, in a scratch
# module that requires REQUIRE (module@version) and whose go.mod the function EDIT completes.
wrapper_build() {
  local name=$1 edit=$2 ldflags=$3 require=$4 out=$5 dir
  dir=$(mktemp -d)
  cp "scripts/kube/$name/main.go" "$dir/"
  (
    cd "$dir"
    go mod init "ragplane.local/$name" >/dev/null 2>&1
    go mod edit -require="$require"
    "$edit"
    go mod tidy >/dev/null
    GOFLAGS=-buildvcs=false go build -trimpath -ldflags "$ldflags" -o "$out" .
  )
  rm -rf "$dir"
}

# kubernetes replaces each k8s.io staging module with ./staging/src/...; the same module's
# release is v0.MINOR.PATCH for kubernetes v1.MINOR.PATCH.
replace_staging() {
  local mod staging_version="v0.${KUBERNETES_VERSION#v1.}" replacements=()
  go mod download k8s.io/kubernetes@"$KUBERNETES_VERSION"
  mod="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$KUBERNETES_VERSION.mod"
  while read -r staged; do
    replacements+=("-replace=$staged=$staged@$staging_version")
  done < <(sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/.*#\1#p' "$mod")
  go mod edit "${replacements[@]}"
}
no_edit() { :; }

# helm checks the chart's kubeVersion against the server's: without the stamp it reads v0.0.0.
cached_tool kube-apiserver "$KUBERNETES_VERSION" wrapper_build kube-apiserver replace_staging \
  "-X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION" "k8s.io/kubernetes@$KUBERNETES_VERSION"
cached_tool etcd "$ETCD_VERSION" wrapper_build etcd no_edit "" \
  "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
install_report
