#!/usr/bin/env bash
# install-service.sh SERVICE PREFIX: install one ragplane service, the shared packages it needs
# and their pinned dependencies (requirements/services/SERVICE.lock) into a virtual environment
# at PREFIX. Each service's Dockerfile runs this in its build stage, and the tests run it too
# (tests/images), so every image's install path is tested where no image can be built.
#
# SERVICE: query, retrieval, generation, embedding (torch with its CUDA libraries: the CUDA image
# and the ONNX export) or embedding-cpu (ONNX Runtime and tokenizers alone: the CPU image).
# uv comes from $UV, else from PATH; the Python interpreter from $PYTHON (default python3.11).
# uv never downloads an interpreter here, and reuses its cache (hard links where it can).
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: $0 query|retrieval|generation|embedding|embedding-cpu PREFIX"
service=${1:?$usage}
prefix=${2:?$usage}
lock=requirements/services/$service.lock
if [ ! -f "$lock" ]; then
  echo "error: unknown service '$service' (no $lock); $usage" >&2
  exit 2
fi
uv=${UV:-uv}
export UV_PYTHON_DOWNLOADS=never

"$uv" venv --quiet --python "${PYTHON:-python3.11}" "$prefix"
"$uv" pip sync --quiet --compile-bytecode --python "$prefix/bin/python" "$lock"
# The service must import with exactly what was installed (no package from elsewhere).
"$prefix/bin/python" -I -c "import ragplane.${service%-cpu}.__main__"
echo "installed ragplane-$service ($lock) into $prefix"
