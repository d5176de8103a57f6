#include "image_output.h"

#include <unistd.h>

#include <filesystem>
#include <map>

#include "io/safetensors.h"
#include "krea2/error.h"
#include "krea2/image.h"

namespace krea2::cli {

namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

Tensor read_latents_for_decode(const std::string& path, const std::optional<LatentSize>& size,
                               std::vector<std::pair<std::string, std::string>>* metadata) {
  const SafetensorsFile f(path);
  if (metadata)
    for (const auto& [k, v] : f.metadata())
      if (k != "format") metadata->emplace_back(k, v);
  const TensorView* v = f.find("latents_unpacked");
  if (!v) v = f.find("latents");
  if (!v) throw Error(path + ": holds neither 'latents_unpacked' nor 'latents'");
  Tensor t = to_float_tensor(*v);
  if (t.shape.size() == 5) {
    if (t.dim(2) != 1)
      throw Error(path + ": tensor '" + v->name + "' " + shape_str(t.shape) + " has " +
                  std::to_string(t.dim(2)) + " frames; krea2 decodes one frame (B, C, 1, h, w)");
    t.shape = {t.dim(0), t.dim(1), t.dim(3), t.dim(4)};
    return t;
  }
  if (t.shape.size() == 4) return t;
  if (t.shape.size() == 3) {
    if (!size)
      throw Error(path + ": tensor '" + v->name + "' is packed " + shape_str(t.shape) +
                  ": give --height and --width (pixels) to unpack it");
    if (t.dim(1) != size->tokens())
      throw Error(path + ": packed latents have " + std::to_string(t.dim(1)) + " tokens, but " +
                  std::to_string(size->height * kVaeScale) + " x " + std::to_string(size->width * kVaeScale) +
                  " pixels need " + std::to_string(size->tokens()));
    if (t.dim(2) % 4 != 0)
      throw Error(path + ": packed latents must have 4 x channels, found " + shape_str(t.shape));
    return unpack_latents(t, *size);
  }
  throw Error(path + ": tensor '" + v->name +
              "' must be (B, C, h, w), (B, C, 1, h, w) or packed (B, N, 4C), found " + shape_str(t.shape));
}

void check_image_output(const std::string& output) {
  if (!ends_with(output, ".png") && !ends_with(output, ".safetensors"))
    throw Error("--output must end in .png (images) or .safetensors (the float image), found '" + output +
                "'");
  fs::path folder = fs::path(output).parent_path();
  if (folder.empty()) folder = ".";
  if (!fs::is_directory(folder)) throw Error(output + ": the folder " + folder.string() + " does not exist");
  if (access(folder.c_str(), W_OK) != 0)
    throw Error(output + ": the folder " + folder.string() + " is not writable");
}

Tensor decode_latents(const Vae& vae, const Tensor& latents, Progress& progress) {
  VaeDecodeOptions o;
  o.progress = [&](int done, int total) { progress.update("decode", done, total); };
  Tensor image = vae.decode(latents, o);
  progress.finish();
  return image;
}

std::vector<std::string> write_image_output(const std::string& output, const Tensor& image,
                                            const std::vector<std::pair<std::string, std::string>>& text) {
  if (ends_with(output, ".safetensors")) {
    std::map<std::string, std::string> meta = {{"format", "pt"}};
    for (const auto& [k, v] : text) meta[k] = v;
    write_safetensors(output, {{"image", image}}, meta);
    return {output};
  }
  const int64_t B = image.dim(0), H = image.dim(2), W = image.dim(3);
  std::vector<Rgb8Image> images = split_rgb8_batch(image_to_rgb8(image), B, H, W);
  std::vector<std::string> paths;
  const std::string stem = output.substr(0, output.size() - 4);
  for (int64_t b = 0; b < B; ++b) {
    Rgb8Image& im = images[size_t(b)];
    im.text = text;
    if (B > 1) im.text.emplace_back("batch_index", std::to_string(b));
    paths.push_back(B == 1 ? output : stem + "-" + std::to_string(b) + ".png");
    write_png(paths.back(), im);
  }
  return paths;
}

}  // namespace krea2::cli
