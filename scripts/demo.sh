#!/usr/bin/env bash
# The main job on a built-in default: set up, build, and turn a prompt into a PNG with the bundled small random
# Krea 2 pipeline (tests/fixtures/demo_pipeline: tokenizer, Qwen3-VL text encoder, transformer, VAE), writing
# out/demo.png. Random weights make a meaningless picture; see the last lines for real files.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target krea2
mkdir -p out
./build/krea2 generate --model tests/fixtures/demo_pipeline \
  --prompt "A watercolor painting of a lighthouse on a rocky cliff at dawn" --negative-prompt "" \
  --height 256 --width 256 --steps 8 --guidance 4.5 --seed 42 --output out/demo.png "$@"
echo "Wrote out/demo.png (random weights: the picture means nothing; its text chunks hold the prompt and settings)."
echo "With real weights, point --model at a Krea 2 diffusers pipeline root (transformer/, text_encoder/,"
echo "tokenizer/, vae/), or give the files one by one:"
echo "  ./build/krea2 generate --model krea2.safetensors --text-encoder qwen3vl_4b.safetensors --tokenizer tokenizer.json \\"
echo "    --vae qwen_image_vae.safetensors --prompt \"...\" --height 1024 --width 1024 --steps 28 --guidance 4.5 --output image.png"
