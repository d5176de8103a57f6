// krea2 decode: latents -> picture with the Qwen-Image (Wan 2.1) VAE decoder, as the Krea2Pipeline's decode
// step and VaeImageProcessor.postprocess.
#include <cstdio>

#include "args.h"
#include "commands.h"
#include "cpu_info.h"
#include "image_output.h"
#include "krea2/vae.h"

namespace krea2::cli {

namespace {

const char* kHelp = R"(Usage: krea2 decode --vae PATH --latents FILE --output image.png [options]

Decodes latents as the Krea2Pipeline does: un-normalise with the VAE config's latents_mean / latents_std, the
decoder (post_quant_conv, conv_in, mid block with attention, up blocks, head), clamp to [-1, 1], then
VaeImageProcessor.postprocess to 8-bit RGB. Writes FILE.png (a batch: FILE-0.png, FILE-1.png, ...) with the
latents file's metadata (prompt, seed, steps, ...) as PNG text chunks, or with --output x.safetensors the float
image (B, 3, H, W).

  --vae PATH            a diffusers vae/ folder, a pipeline root holding vae/, or a single file under diffusers or
                        original Wan 2.1 names
  --latents FILE        latents_unpacked (B, 16, h, w) as `krea2 generate` writes it, (B, 16, 1, h, w) with
                        diffusers' frame axis, or packed latents (B, N, 64) with --height/--width
  --height H --width W  image size in pixels, for packed latents
  --output FILE         .png or .safetensors (written to FILE.tmp, then renamed)
  --threads N           OpenMP threads (default: all cores)
  --isa LEVEL           avx2 | avx512 (default: the best the CPU has)
  --quiet               no progress or summary on stderr
)";

}  // namespace

int cmd_decode(int argc, char** argv) {
  Args args(argc, argv, {"--vae", "--latents", "--output", "--height", "--width", "--threads", "--isa"},
            {"--quiet", "--help"});
  if (args.has("--help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  if (!args.positional().empty())
    throw Error("unexpected argument '" + args.positional()[0] + "' (see --help)");
  if (args.has("--threads")) set_threads(args.get_int("--threads", 0));
  apply_isa_option(args);
  const std::string vae_path = args.require("--vae"), latents_path = args.require("--latents");
  const std::string output = args.require("--output");
  const bool quiet = args.has("--quiet");
  check_image_output(output);
  std::optional<LatentSize> size;
  if (args.has("--height") || args.has("--width")) {
    args.require("--height");
    args.require("--width");
    size = latent_size_from_pixels(args.get_int("--height", 0), args.get_int("--width", 0));
  }
  std::vector<std::pair<std::string, std::string>> text;
  const Tensor latents = read_latents_for_decode(latents_path, size, &text);
  Progress progress(!quiet && stderr_is_terminal());
  progress.message("loading VAE " + vae_path);
  VaeLoadOptions load;
  std::vector<std::string> warnings;
  load.warnings = &warnings;
  const Vae vae = Vae::load(vae_path, load);
  for (const std::string& w : warnings)
    if (!quiet) std::fprintf(stderr, "warning: %s\n", w.c_str());
  const double start = progress.seconds();
  const Tensor image = decode_latents(vae, latents, progress);
  const double seconds = progress.seconds() - start;
  text.emplace_back("vae", vae_path);
  text.emplace_back("software", "krea2");
  const std::vector<std::string> written = write_image_output(output, image, text);
  if (!quiet)
    std::fprintf(stderr, "wrote %s%s (%lld x %lld) in %.3f s\n", written[0].c_str(),
                 written.size() > 1 ? (" and " + std::to_string(written.size() - 1) + " more").c_str() : "",
                 (long long)image.dim(2), (long long)image.dim(3), seconds);
  return 0;
}

}  // namespace krea2::cli
