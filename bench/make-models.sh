#!/usr/bin/env bash
# Make the synthetic benchmark models (random weights, real shapes) under bench/models/.
#   bash bench/make-models.sh                 # smollm2-135m (fp32, q8, q4) + smollm2-135m-q8dq (weight-only q8)
#   PRESETS="smollm2-135m qwen2.5-0.5b" bash bench/make-models.sh
# Creates a Python venv in bench/.venv (numpy + onnx from PyPI) unless $PYTHON already has them.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
TOOL="${SYNTH_TOOL:-$ROOT/../shared/tools/make-synthetic-llama.py}"
TOKENIZER="${TOKENIZER_FROM:-$ROOT/../shared/models/hf-internal-testing__tiny-random-LlamaForCausalLM}"
OUT="${OUT:-$HERE/models}"
PRESETS="${PRESETS:-smollm2-135m}"

[ -f "$TOOL" ] || { echo "make-models: $TOOL not found (set SYNTH_TOOL)" >&2; exit 1; }
[ -f "$TOKENIZER/tokenizer.json" ] || { echo "make-models: no tokenizer.json in $TOKENIZER (set TOKENIZER_FROM)" >&2; exit 1; }

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if ! "$HERE/.venv/bin/python" -c 'import numpy, onnx' 2>/dev/null; then
    echo "make-models: creating $HERE/.venv with numpy and onnx" >&2
    python3 -m venv "$HERE/.venv"
    "$HERE/.venv/bin/pip" install --quiet --disable-pip-version-check numpy onnx
  fi
  PY="$HERE/.venv/bin/python"
fi

mkdir -p "$OUT"
for p in $PRESETS; do
  echo "make-models: $OUT/$p (fp32, q8 dynamic, q4)" >&2
  "$PY" "$TOOL" "$OUT/$p" --preset "$p" --tokenizer-from "$TOKENIZER"
done
# Weight-only q8 (DequantizeLinear + MatMul): batch-invariant, unlike the Hub-style dynamic q8 above.
if [ "${Q8DQ:-1}" != 0 ]; then
  for p in $PRESETS; do
    echo "make-models: $OUT/$p-q8dq (weight-only q8)" >&2
    "$PY" "$TOOL" "$OUT/$p-q8dq" --preset "$p" --dtypes q8 --q8-format dq --tokenizer-from "$TOKENIZER"
  done
fi
ls -la "$OUT"/*/onnx >&2
