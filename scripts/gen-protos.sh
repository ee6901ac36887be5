#!/usr/bin/env bash
# Generate the Python stubs of protos/ragplane/v1 into OUT (default: the ragplane-protos package).
# Usage: scripts/gen-protos.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-protos/python/src}"
python="${PYTHON:-.venv/bin/python}"
bin="$(dirname "$python")"
mkdir -p "$out/ragplane/v1"
rm -f "$out"/ragplane/v1/*_pb2*.py "$out"/ragplane/v1/*_pb2*.pyi
"$python" -m grpc_tools.protoc \
  -I protos \
  --python_out="$out" \
  --grpc_python_out="$out" \
  --plugin=protoc-gen-mypy="$bin/protoc-gen-mypy" \
  --plugin=protoc-gen-mypy_grpc="$bin/protoc-gen-mypy_grpc" \
  --mypy_out="$out" \
  --mypy_grpc_out="$out" \
  protos/ragplane/v1/*.proto
cat > "$out/ragplane/v1/__init__.py" <<'PY'
"""Generated stubs of the ragplane.v1 contracts; regenerate with `make protos`, do not edit."""
PY
touch "$out/ragplane/v1/py.typed"
