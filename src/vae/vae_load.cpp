// Vae::load: find the weights (a vae/ folder, a pipeline root holding one, a single file), recognise the
// naming scheme, settle the config (config.json, or the released config with the sizes from the tensor
// shapes), then bind every live parameter: conv weights decoded from any stored type, their live temporal tap
// reordered once into conv2d's layout in owned float32 memory.
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <set>
#include <sstream>

#include "io/checkpoint.h"
#include "krea2/error.h"
#include "krea2/vae.h"
#include "model/weight_binding.h"
#include "ops/weight_decode.h"
#include "vae/vae_weights.h"

namespace krea2 {

namespace fs = std::filesystem;

namespace {

struct Layout {
  VaeNames names = VaeNames::kDiffusers;
  std::string prefix;
};

// diffusers is recognised by decoder.conv_in, Wan by decoder.middle.0.residual.0.gamma (as diffusers'
// single-file loader does), either bare or under a prefix some single files carry.
Layout detect_layout(const Checkpoint& ckpt) {
  for (const char* prefix : {"", "vae.", "first_stage_model."}) {
    const std::string p = prefix;
    if (ckpt.find(p + "decoder.conv_in.weight")) return {VaeNames::kDiffusers, p};
    if (ckpt.find(p + "decoder.middle.0.residual.0.gamma") || ckpt.find(p + "decoder.conv1.weight"))
      return {VaeNames::kWan, p};
  }
  throw Error(ckpt.source() +
              ": not a Qwen-Image / Wan 2.1 VAE: no 'decoder.conv_in.weight' (diffusers names) or "
              "'decoder.middle.0.residual.0.gamma' (original Wan 2.1 names)" +
              std::string(ckpt.tensors().empty() ? " (it holds no tensors)" : ""));
}

// The released config with the sizes the tensor shapes give: z_dim, the number of levels and res blocks,
// and the channel list (base_dim = the gcd of the channels; only the products base_dim * dim_mult matter).
VaeConfig config_from_shapes(const Checkpoint& ckpt, const Layout& lay) {
  auto find = [&](const VaeModule& m, const std::string& local, int64_t R) {
    return ckpt.find(vae_param_name(m, local, lay.names, R, lay.prefix));
  };
  auto shape = [&](const VaeModule& m, const std::string& local, int64_t R) -> const Shape& {
    const TensorView* t = find(m, local, R);
    if (!t)
      throw Error(ckpt.source() + ": missing tensor '" + vae_param_name(m, local, lay.names, R, lay.prefix) +
                  "'");
    if (t->shape.size() < 2)
      throw Error(ckpt.source() + ": tensor '" + t->name + "' has shape " + shape_str(t->shape) +
                  ", expected a conv weight");
    return t->shape;
  };
  VaeConfig c;
  // Up block 0's resnets are named alike under any R (Wan: decoder.upsamples.j).
  int64_t resnets = 0;
  while (resnets < 64 && find({VaeModule::kUpResnet, 0, resnets}, "conv1.weight", 0)) ++resnets;
  if (resnets == 0)
    throw Error(ckpt.source() + ": missing tensor '" +
                vae_param_name({VaeModule::kUpResnet, 0, 0}, "conv1.weight", lay.names, 0, lay.prefix) + "'");
  c.num_res_blocks = resnets - 1;
  const int64_t R = c.num_res_blocks;
  int64_t levels = 0;
  while (levels < 12 && find({VaeModule::kUpResnet, levels, 0}, "conv1.weight", R)) ++levels;
  std::vector<int64_t> d = {shape({VaeModule::kConvIn}, "weight", R)[0]};
  for (int64_t i = 0; i < levels; ++i) d.push_back(shape({VaeModule::kUpResnet, i, 0}, "conv1.weight", R)[0]);
  int64_t base = 0;
  for (int64_t x : d) base = std::gcd(base, x);
  c.base_dim = base > 0 ? base : 1;
  c.dim_mult.assign(size_t(levels), 1);
  for (int64_t i = 0; i < levels; ++i) c.dim_mult[size_t(levels - 1 - i)] = d[size_t(i + 1)] / c.base_dim;
  c.z_dim = shape({VaeModule::kConvIn}, "weight", R)[1];
  if (c.z_dim != int64_t(c.latents_mean.size()))
    throw Error(
        ckpt.source() + ": the weights have z_dim " + std::to_string(c.z_dim) +
        " but no config.json gives their latents_mean / latents_std (the released VAE's are for z_dim 16)");
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(ckpt.source() + ": " + e.what());
  }
  return c;
}

// The live slice of a stored conv weight, reordered to (out, k, k, in): from (out, in, taps, k, k) at tap
// `tap`, or from (out, in, k, k).
void gather_conv(const WeightMatrix& m, const Shape& shape, int64_t tap, float* dst) {
  const int64_t out = shape[0], in = shape[1], k = shape.back();
  const int64_t taps = shape.size() == 5 ? shape[2] : 1;
  const int64_t cols = m.cols;
#pragma omp parallel if (out * cols > (1 << 16))
  {
    std::vector<float> row(static_cast<size_t>(cols));
#pragma omp for schedule(static)
    for (int64_t o = 0; o < out; ++o) {
      decode_weight_segment(m, o, 0, cols, row.data());
      float* d = dst + o * k * k * in;
      for (int64_t c = 0; c < in; ++c)
        for (int64_t ky = 0; ky < k; ++ky)
          for (int64_t kx = 0; kx < k; ++kx)
            d[(ky * k + kx) * in + c] = row[size_t(((c * taps + tap) * k + ky) * k + kx)];
    }
  }
}

void bind(VaeImpl& m, const Checkpoint& ckpt, const Layout& lay) {
  std::set<std::string> used;
  std::vector<std::string> problems;
  std::vector<std::unique_ptr<std::byte[]>> scratch;  // binder copies (scales, aligned data): load-time only
  WeightBinder binder(
      ckpt,
      [&](size_t bytes) {
        return scratch.emplace_back(std::make_unique_for_overwrite<std::byte[]>(bytes)).get();
      },
      used, problems);
  const int64_t R = m.config.num_res_blocks;
  visit_vae_weights(m.weights, m.config, [&](VaeParamSlot& slot) {
    const std::string name = vae_param_name(slot.module, slot.local, lay.names, R, lay.prefix);
    const TensorView* t = binder.find(name, slot.shape);
    if (!t) return;
    if (slot.vector) return binder.vector(*t, name, *slot.vector);
    const size_t before = problems.size();
    WeightMatrix wm;
    binder.matrix(*t, name, slot.shape[0], shape_numel(slot.shape) / slot.shape[0], wm);
    if (problems.size() != before) return;
    const VaeConv& cv = *slot.conv;
    float* dst = m.new_floats(size_t(cv.out * cv.kernel * cv.kernel * cv.in));
    gather_conv(wm, slot.shape, slot.live_tap, dst);
    slot.conv->weight = dst;
  });
  std::vector<std::string> unexpected;
  for (const TensorView* t : ckpt.tensors()) {
    if (used.count(t->name)) continue;
    const bool prefixed = t->name.rfind(lay.prefix, 0) == 0;
    if (prefixed && is_ignorable_vae_tensor(t->name.substr(lay.prefix.size()), lay.names))
      m.load_info.ignored_tensors.push_back(t->name);
    else
      unexpected.push_back(t->name);
  }
  if (!unexpected.empty()) {
    std::string list;
    for (size_t i = 0; i < unexpected.size() && i < 10; ++i) list += (i ? "', '" : "") + unexpected[i];
    if (unexpected.size() > 10) list += "', ...";
    problems.push_back(std::to_string(unexpected.size()) +
                       " unexpected tensor(s) not used by this config: '" + list + "'");
  }
  if (problems.empty()) return;
  std::ostringstream os;
  os << ckpt.source() << " (" << vae_names_description(lay.names)
     << "): the VAE's tensors do not match its config";
  if (problems.size() == 1) throw Error(os.str() + ": " + problems[0]);
  os << " (" << problems.size() << " problems):";
  for (size_t i = 0; i < problems.size() && i < 20; ++i) os << "\n  " << problems[i];
  if (problems.size() > 20) os << "\n  ... and " << problems.size() - 20 << " more";
  throw Error(os.str());
}

}  // namespace

void pack_vae_convs(VaeWeights& w) {
  auto pack = [](VaeConv& c) {
    if (c.weight) c.packed = PackedConv2d(c.view());
  };
  auto resnet = [&](VaeResnet& r) {
    pack(r.conv1);
    pack(r.conv2);
    pack(r.shortcut);
  };
  pack(w.post_quant_conv);
  pack(w.conv_in);
  resnet(w.mid0);
  pack(w.mid_attention.to_qkv);
  pack(w.mid_attention.proj);
  resnet(w.mid1);
  for (VaeUpBlock& b : w.up_blocks) {
    for (VaeResnet& r : b.resnets) resnet(r);
    pack(b.upsample);
  }
  pack(w.conv_out);
}

Vae::Vae(std::shared_ptr<const VaeImpl> impl) : impl_(std::move(impl)) {}

const VaeConfig& Vae::config() const {
  return impl_->config;
}

const VaeLoadInfo& Vae::load_info() const {
  return impl_->load_info;
}

int64_t Vae::parameter_count() const {
  int64_t n = 0;
  visit_vae_weights(const_cast<VaeWeights&>(impl_->weights), impl_->config, [&](VaeParamSlot& s) {
    n += s.conv ? s.conv->out * s.conv->in * s.conv->kernel * s.conv->kernel : int64_t(s.vector->size());
  });
  return n;
}

Vae Vae::load(const std::string& path, const VaeLoadOptions& options) {
  const fs::path p(path);
  if (!fs::exists(p)) throw Error(path + ": no such file or folder");
  // A pipeline root holds the VAE in vae/.
  const fs::path folder = fs::is_directory(p / "vae") ? p / "vae" : p;
  if (options.verbose) std::fprintf(stderr, "loading VAE %s\n", folder.string().c_str());
  const Checkpoint ckpt = Checkpoint::open(folder.string());
  const Layout lay = detect_layout(ckpt);
  auto impl = std::make_shared<VaeImpl>();
  VaeLoadInfo& info = impl->load_info;
  info.file_format = ckpt.describe();
  info.names = vae_names_description(lay.names);
  if (!lay.prefix.empty()) info.names += ", prefix '" + lay.prefix + "'";
  const fs::path config_path = fs::path(ckpt.folder()) / "config.json";
  // A single file may sit beside a config.json of something else (a transformer's): not used then.
  bool config_beside = fs::is_regular_file(config_path);
  if (config_beside && fs::is_regular_file(p)) try {
      (void)VaeConfig::from_json_file(config_path.string());
    } catch (const Error&) {
      config_beside = false;
    }
  if (config_beside) {
    impl->config = VaeConfig::from_json_file(config_path.string());
    info.config_source = config_path.string();
  } else {
    impl->config = config_from_shapes(ckpt, lay);
    info.config_source = "tensor shapes; the released VAE's latents_mean / latents_std";
  }
  bind(*impl, ckpt, lay);
  pack_vae_convs(impl->weights);
  if (!info.ignored_tensors.empty() && options.warnings)
    options.warnings->push_back(ckpt.source() + ": note: ignored " +
                                std::to_string(info.ignored_tensors.size()) +
                                " tensor(s) decoding never reads (encoder, quant_conv, time_conv)");
  return Vae(impl);
}

}  // namespace krea2
