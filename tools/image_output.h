// Latents in, pictures out: what `krea2 decode` and `krea2 generate --vae` share. Latent files as generate
// writes them (latents_unpacked (B, 16, h, w), or diffusers' (B, 16, 1, h, w)), or packed latents (B, N, 64)
// with the image size; images as PNGs (NAME.png, or NAME-0.png, NAME-1.png, ... for a batch) with the
// generation parameters in text chunks, or as the float image in a safetensors file.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "krea2/sampler.h"
#include "krea2/tensor.h"
#include "krea2/vae.h"
#include "progress.h"

namespace krea2::cli {

// The latents to decode from `path`: latents_unpacked (4-D or 5-D with a frame axis of 1), else latents
// (4-D / 5-D as above, or packed (B, N, C) with `size`). Metadata of the file is appended to `metadata`.
Tensor read_latents_for_decode(const std::string& path, const std::optional<LatentSize>& size,
                               std::vector<std::pair<std::string, std::string>>* metadata);

// Fails early (before any compute) when the image output cannot be written: the folder is missing or not
// writable, or the extension is neither .png nor .safetensors.
void check_image_output(const std::string& output);

// Decodes with progress ("decode" stages) and returns the image (B, 3, H, W) in [-1, 1].
Tensor decode_latents(const Vae& vae, const Tensor& latents, Progress& progress);

// Writes `image` to `output`: .png -> PNG file(s) with `text` chunks; .safetensors -> `image`. Returns the
// paths written.
std::vector<std::string> write_image_output(const std::string& output, const Tensor& image,
                                            const std::vector<std::pair<std::string, std::string>>& text);

}  // namespace krea2::cli
