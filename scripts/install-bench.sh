#!/usr/bin/env bash
# Install what `make bench-embedding` needs beyond `make install`: the load generators (ghz for
# gRPC, vegeta for HTTP, each built once with go install and cached under $RAGPLANE_CACHE/bin,
# linked into .bin/) and Infinity, the embedding server ragplane is compared with, in a virtual
# environment of its own under $RAGPLANE_CACHE/bench-venvs (never in .venv: its pins differ).
# Safe to rerun: every step is skipped when its result is already there.
#
# Infinity is optional. This script describes what it installed, or why it could not, in
# $RAGPLANE_CACHE/bench-venvs/infinity.json, which the benchmark reads; a failure there is
# reported and retried on the next run, and the benchmark still measures everything else.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/versions.env
CACHE="${RAGPLANE_CACHE:-$HOME/.cache/ragplane}"
UV="$CACHE/uv-$UV_VERSION/bin/uv"
mkdir -p "$CACHE/bin" "$CACHE/bench-venvs" .bin

# Pinned versions of the benchmark's tools.
VEGETA_MODULE=github.com/tsenart/vegeta/v12
VEGETA_VERSION=v12.13.0
INFINITY_EMB_VERSION=0.0.78
# Infinity's direct dependencies that the benchmark's workarounds depend on (see
# prepare_onnx_model and bench/embedding/phases.py). torch is ragplane's own (requirements/dev.lock):
# both servers then run the same kernels, and uv links it from its cache instead of downloading.
INFINITY_PINS=(
  "infinity-emb[server,torch,optimum]==$INFINITY_EMB_VERSION"
  "torch==2.9.1"
  "optimum==2.1.0"
  "optimum-onnx==0.1.0"
  "onnxruntime==1.32.0"
)
# Everything else resolves as it did on this day, so that a later release cannot change it.
INFINITY_EXCLUDE_NEWER=2026-11-23T00:00:00Z

INFINITY_VENV="$CACHE/bench-venvs/infinity-$INFINITY_EMB_VERSION"
# Infinity's caches (HF_HOME, INFINITY_HOME) stay beside its environment.
INFINITY_HOME="$INFINITY_VENV/home"
ONNX_MODEL="$INFINITY_VENV/onnx-model"
STATUS="$CACHE/bench-venvs/infinity.json"

source scripts/lib.sh


# write_status KEY=VALUE...: infinity.json for the benchmark (values JSON-escaped by Python).
write_status() {
  python3 - "$STATUS" "$@" <<'EOF'
import json, sys
path, pairs = sys.argv[1], sys.argv[2:]
status = dict(pair.split("=", 1) for pair in pairs)
with open(path, "w") as out:
    json.dump({key: value or None for key, value in status.items()}, out, indent=2)
EOF
}

# run_logged LOG COMMAND...: run quietly; on failure leave the last lines of output in LOG.
run_logged() {
  local log=$1
  shift
  "$@" >"$log" 2>&1
}

INFINITY_STAMP="${INFINITY_PINS[*]} exclude-newer=$INFINITY_EXCLUDE_NEWER python=3.11"

infinity_venv_current() {
  [ -f "$INFINITY_VENV/.bench-stamp" ] && [ "$(cat "$INFINITY_VENV/.bench-stamp")" = "$INFINITY_STAMP" ]
}

install_infinity_venv() {
  # From scratch: packages left over from other pins can shadow each other (optimum's modules).
  rm -rf "$INFINITY_VENV"
  "$UV" venv -q --python python3.11 "$INFINITY_VENV" &&
    "$UV" pip install -q --python "$INFINITY_VENV/bin/python" \
      --exclude-newer "$INFINITY_EXCLUDE_NEWER" "${INFINITY_PINS[@]}" &&
    echo "$INFINITY_STAMP" >"$INFINITY_VENV/.bench-stamp"
}

# Infinity's optimum engine needs an ONNX model beside the tokenizer; the bundled model has none.
# Export it once, as plain transformers (its output must be last_hidden_state, which Infinity
# pools), then apply the transformer fusions that Infinity would apply itself (ORT optimizer,
# level 99, CPU): its own call for that fails on optimum 2, and on optimum 1 the export fails on
# this torch.
prepare_onnx_model() {
  local model work
  model=$(.venv/bin/python -c 'from ragplane.embedding.config import bundled_model_path; print(bundled_model_path())')
  work=$(mktemp -d)
  HF_HUB_OFFLINE=1 HF_HOME="$INFINITY_HOME" "$INFINITY_VENV/bin/optimum-cli" export onnx \
    --model "$model" --task feature-extraction --library-name transformers "$work/export" &&
    "$INFINITY_VENV/bin/python" -m onnxruntime.transformers.optimizer \
      --input "$work/export/model.onnx" --output "$work/optimized.onnx" \
      --model_type bert --opt_level 99 &&
    mkdir -p "$work/model" &&
    cp "$work/export/"{config.json,special_tokens_map.json,tokenizer.json,tokenizer_config.json,vocab.txt} "$work/model/" &&
    mv "$work/optimized.onnx" "$work/model/model.onnx" &&
    rm -rf "$ONNX_MODEL" && mv "$work/model" "$ONNX_MODEL"
  local status=$?
  rm -rf "$work"
  return $status
}

install_infinity() {
  local log
  log=$(mktemp)
  if ! infinity_venv_current; then
    step "installing infinity-emb $INFINITY_EMB_VERSION into $INFINITY_VENV (uv)"
  fi
  if ! infinity_venv_current && ! run_logged "$log" install_infinity_venv; then
    write_status version="$INFINITY_EMB_VERSION" error="uv could not install it: $(tail -n 15 "$log")"
    echo "warning: Infinity is not installed (the benchmark will say why): $(tail -n 3 "$log")" >&2
    rm -f "$log"
    return
  fi
  mkdir -p "$INFINITY_HOME"
  local onnx_error=""
  [ -f "$ONNX_MODEL/model.onnx" ] ||
    step "exporting all-MiniLM-L6-v2 to ONNX for Infinity's optimum engine (once; ~30 s)"
  if [ ! -f "$ONNX_MODEL/model.onnx" ] && ! run_logged "$log" prepare_onnx_model; then
    onnx_error="exporting the model to ONNX failed: $(tail -n 15 "$log")"
    echo "warning: no ONNX model for Infinity's optimum engine: $(tail -n 3 "$log")" >&2
  fi
  rm -f "$log"
  local onnx_model=""
  [ -f "$ONNX_MODEL/model.onnx" ] && onnx_model="$ONNX_MODEL"
  write_status version="$INFINITY_EMB_VERSION" venv="$INFINITY_VENV" home="$INFINITY_HOME" \
    onnx_model="$onnx_model" onnx_error="$onnx_error" error=""
}

[ -x "$UV" ] && [ -x .venv/bin/python ] || { echo "error: run 'make install' first" >&2; exit 1; }
go_tool "$GHZ_MODULE" "$GHZ_VERSION" ghz
go_tool "$VEGETA_MODULE" "$VEGETA_VERSION" vegeta
install_infinity
