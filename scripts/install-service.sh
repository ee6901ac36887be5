#!/usr/bin/env bash
# install-service.sh [--dependencies|--packages] SERVICE PREFIX: install one ragplane service, the
# shared packages it needs and their pinned dependencies (requirements/services/SERVICE.lock)
# into a virtual environment at PREFIX. The Dockerfile runs the two halves as two build steps,
# and the tests run the whole (tests/images), so every image's install path is tested where no
# image can be built.
#
#   --dependencies  only the pinned third-party packages, into the environment at PREFIX
#   --packages      only ragplane's own packages, into PREFIX/packages (after --dependencies)
# ragplane's packages live apart from their dependencies (on the environment's path through a
# .pth file) so that an image keeps its layer of dependencies, gigabytes with torch, when only
# ragplane's code changes.
#
# SERVICE: query, retrieval, generation, embedding (torch with its CUDA libraries: the CUDA image
# and the ONNX export) or embedding-cpu (ONNX Runtime and tokenizers alone: the CPU image).
# uv comes from $UV, else from PATH; the Python interpreter from $PYTHON (default python3.11).
# uv never downloads an interpreter here, and reuses its cache (hard links where it can).
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: $0 [--dependencies|--packages] query|retrieval|generation|embedding|embedding-cpu PREFIX"
steps=(dependencies packages)
case ${1:-} in
  --dependencies | --packages) steps=("${1#--}") && shift ;;
esac
service=${1:?$usage}
prefix=${2:?$usage}
lock=requirements/services/$service.lock
if [ ! -f "$lock" ]; then
  echo "error: unknown service '$service' (no $lock); $usage" >&2
  exit 2
fi
uv=${UV:-uv}
export UV_PYTHON_DOWNLOADS=never

dependencies() {
  local pinned site
  pinned=$(mktemp)
  grep -v '^\./' "$lock" >"$pinned"
  "$uv" venv --quiet --python "${PYTHON:-python3.11}" "$prefix"
  "$uv" pip sync --quiet --compile-bytecode --python "$prefix/bin/python" "$pinned"
  rm -f "$pinned"
  site=$("$prefix/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
  echo "$prefix/packages" >"$site/ragplane-packages.pth"
  echo "installed the dependencies of ragplane-$service ($lock) into $prefix"
}

packages() {
  local own
  mapfile -t own < <(grep '^\./' "$lock")
  "$uv" pip install --quiet --no-deps --compile-bytecode --python "$prefix/bin/python" \
    --target "$prefix/packages" "${own[@]}"
  # The service must import with exactly what was installed (no package from elsewhere).
  "$prefix/bin/python" -I -c "import ragplane.${service%-cpu}.__main__"
  echo "installed ragplane-$service into $prefix/packages (console scripts in $prefix/packages/bin)"
}

for step in "${steps[@]}"; do
  "$step"
done
