#!/usr/bin/env bash
# The main job on a built-in default: set up, build, and denoise latents with the bundled small Krea 2 checkpoint
# and prompt embeddings (tests/fixtures/sample_base_cfg), writing out/latents.safetensors.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target krea2
mkdir -p out
model=tests/fixtures/sample_base_cfg
./build/krea2 generate --model "$model" --prompt-embeds "$model/inputs.safetensors" \
  --negative-embeds "$model/inputs.safetensors" --latent-height 8 --latent-width 12 --steps 6 --guidance 4.5 \
  --seed 42 --output out/latents.safetensors "$@"
echo "Latents written to out/latents.safetensors (tensors: latents, latents_unpacked, sigmas, timesteps)."
echo "With real weights: ./build/krea2 generate --model /path/to/krea2 --prompt-embeds embeds.safetensors \\"
echo "  --height 1024 --width 1024 --steps 28 --guidance 4.5 --output latents.safetensors; decode with the Krea 2 VAE."
