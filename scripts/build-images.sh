#!/usr/bin/env bash
# build-images.sh [IMAGE...]: build the service images with podman from services/Dockerfile,
# tagged as the Helm chart names them (ragplane/SERVICE:APP_VERSION). IMAGE: query, retrieval,
# generation, embedding (the CPU image, the default four) or embedding-cuda (only when named).
# Layers are cached by podman, and uv's cache on this machine is lent to the build stages, so a
# rebuild after a source change takes seconds. Makes the base image first when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/versions.env
CACHE="${RAGPLANE_CACHE:-$HOME/.cache/ragplane}"
source scripts/lib.sh

scripts/build-base-image.sh
app_version=$(sed -n 's/^appVersion: "\(.*\)"$/\1/p' helm/ragplane/Chart.yaml)
uv="$CACHE/uv-$UV_VERSION/bin/uv"
# Lent to the build stages' RUN steps (not kept in the images): this machine's CA bundle, so
# that downloads work behind the same proxies as here, and uv's cache.
lent=(--volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
if [ -x "$uv" ]; then
  lent+=(--volume "$("$uv" cache dir):/uv-cache" --build-arg UV_CACHE_DIR=/uv-cache)
fi

# inputs_digest SERVICE ARG...: a digest of all the build of SERVICE's image reads: its
# arguments, the base image, the Dockerfile and the files its COPY steps take (the shared
# packages, every lock, and the service's own package).
inputs_digest() {
  local service=$1
  {
    printf '%s\n' "$@"
    podman image inspect --format '{{.Id}}' "$(base_image)"
    find services/Dockerfile scripts/install-service.sh protos/python runtime requirements/services \
      "services/$service" -type f -not -path '*/__pycache__/*' -not -path '*.egg-info/*' \
      -printf '%p %m\n' | LC_ALL=C sort |
      while read -r path mode; do printf '%s %s %s\n' "$mode" "$(sha256sum <"$path")" "$path"; done
  } | sha256sum | cut -c1-64
}

# build NAME IMAGE SERVICE SETTINGS_PREFIX METRICS_PORT TARGET [LOCK]; the log goes to
# $CACHE/build-NAME.log (its end is shown when the build fails). An image built from the same
# inputs is kept ($CACHE/image-inputs/NAME holds the inputs' digest and the image id built from
# them): podman's layer cache alone still hashes the 7.6 GB torch layer that the retrieval image
# copies (about a minute) before it finds that nothing changed.
build() {
  local name=$1 image=$2 service=$3 prefix=$4 metrics_port=$5 target=$6 lock=${7:-$3} built
  built="$(inputs_digest "$service" "$@" "$UV_VERSION") $(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null)"
  if [ "$(cat "$CACHE/image-inputs/$name" 2>/dev/null)" = "$built" ]; then
    printf '==> %s is up to date (its inputs are unchanged)\n' "$image"
    return
  fi
  step "building $image"
  podman build --layers --network host --file services/Dockerfile --target "$target" \
    --build-arg BASE_IMAGE="$(base_image)" --build-arg UV_VERSION="$UV_VERSION" \
    --build-arg SERVICE="$service" \
    --build-arg SETTINGS_PREFIX="$prefix" --build-arg METRICS_PORT="$metrics_port" \
    --build-arg LOCK="$lock" "${lent[@]}" --tag "$image" . >"$CACHE/build-$name.log" 2>&1 ||
    { tail -n 40 "$CACHE/build-$name.log" >&2; return 1; }
  mkdir -p "$CACHE/image-inputs"
  printf '%s %s\n' "${built%% *}" "$(podman image inspect --format '{{.Id}}' "$image")" \
    >"$CACHE/image-inputs/$name"
  step_done
}

names=("$@")
((${#names[@]})) || names=(query retrieval generation embedding)
for name in "${names[@]}"; do
  case $name in
    query) build "$name" "ragplane/query:$app_version" query QUERY 9101 service ;;
    embedding) build "$name" "ragplane/embedding:$app_version" embedding EMBEDDING 9102 embedding-cpu embedding-cpu ;;
    embedding-cuda) build "$name" "ragplane/embedding:$app_version-cuda" embedding EMBEDDING 9102 embedding-cuda ;;
    retrieval) build "$name" "ragplane/retrieval:$app_version" retrieval RETRIEVAL 9103 service ;;
    generation) build "$name" "ragplane/generation:$app_version" generation GENERATION 9104 service ;;
    *) echo "error: unknown image '$name' (query, retrieval, generation, embedding, embedding-cuda)" >&2; exit 2 ;;
  esac
done
install_report
podman images --filter reference='ragplane/*' --format '{{.Repository}}:{{.Tag}}  {{.Size}}'
