#include "model/weight_binding.h"

#include <algorithm>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "krea2/error.h"
#include "model/comfy_quant.h"
#include "model/names.h"
#include "ops/weight_decode.h"
#include "tensor/quant_blocks.h"

namespace krea2 {

const TensorView* WeightBinder::companion(const std::vector<std::string>& names) {
  for (const std::string& n : names)
    if (const TensorView* t = ckpt_.find(n)) {
      used_.insert(n);
      return t;
    }
  return nullptr;
}

float* WeightBinder::owned_floats(const std::vector<float>& values) {
  auto* p = reinterpret_cast<float*>(arena_(values.size() * sizeof(float)));
  std::copy(values.begin(), values.end(), p);
  return p;
}

const TensorView* WeightBinder::find(const std::string& name, const Shape& shape) {
  const TensorView* t = ckpt_.find(name);
  if (!t) {
    problems_.push_back("missing tensor '" + name + "' (expected shape " + shape_str(shape) + ")");
    return nullptr;
  }
  used_.insert(name);
  if (t->shape != shape) {
    problems_.push_back("tensor '" + name + "': expected shape " + shape_str(shape) +
                        " (from the config), found " + shape_str(t->shape));
    return nullptr;
  }
  return t;
}

void WeightBinder::matrix(const TensorView& t, const std::string& name, int64_t rows, int64_t cols,
                          WeightMatrix& w) {
  w = WeightMatrix{};
  w.dtype = t.dtype;
  w.rows = rows;
  w.cols = cols;
  w.data = t.data;
  if (!dtype_is_decodable(t.dtype) || t.dtype == DType::U8 || t.dtype == DType::F64) {
    problems_.push_back("tensor '" + name + "': dtype " + std::string(dtype_name(t.dtype)) +
                        " cannot hold a weight (expected F32, F16, BF16, F8_E4M3, F8_E5M2, I8 or a GGUF "
                        "block type)");
    return;
  }
  const QuantCompanionNames names = quant_companion_names(name);
  if (!names.comfy_quant.empty())
    if (const TensorView* q = ckpt_.find(names.comfy_quant)) {
      used_.insert(names.comfy_quant);
      const ComfyQuant quant = parse_comfy_quant(*q, ckpt_.source());
      if (quant.dtype != t.dtype) {
        problems_.push_back("tensor '" + name + "': '" + names.comfy_quant + "' says format " + quant.format +
                            " (" + std::string(dtype_name(quant.dtype)) + "), but the weight is stored as " +
                            std::string(dtype_name(t.dtype)));
        return;
      }
      w.rotation_group = quant.rotation_group;
    }
  companion(names.input_scale);  // fp8 activation scales: our products run in float32
  if (const TensorView* s = companion(names.weight_scale)) {
    const Tensor scale = to_float_tensor(*s);
    if (scale.numel() == 1) {
      w.scale = scale.data[0];
    } else if (scale.numel() == w.rows &&
               (s->shape.size() == 1 || (s->shape.size() == 2 && s->shape[1] == 1))) {
      w.row_scales = owned_floats(scale.data);
    } else {
      problems_.push_back("tensor '" + s->name + "': expected one scale or one per output row (shape (" +
                          std::to_string(w.rows) + ", 1)), found shape " + shape_str(s->shape));
      return;
    }
  } else if (t.dtype == DType::I8) {
    problems_.push_back("tensor '" + name + "': an I8 weight needs its scale '" + names.weight_scale[0] +
                        "' (ComfyUI int8_tensorwise), which is missing");
    return;
  }
  try {
    check_weight_matrix(w, "weight");
  } catch (const std::invalid_argument& e) {
    problems_.push_back("tensor '" + name + "': " + e.what());
    return;
  }
  // OpenBLAS wants aligned float32; a misaligned F32 tensor (odd header padding) gets an aligned copy.
  if (w.is_plain_float() && t.dtype == DType::F32 &&
      reinterpret_cast<uintptr_t>(t.data) % alignof(float) != 0) {
    std::byte* arena = arena_(t.nbytes + 64);
    auto* dst = reinterpret_cast<std::byte*>((reinterpret_cast<uintptr_t>(arena) + 63) & ~uintptr_t(63));
    std::copy(t.data, t.data + t.nbytes, dst);
    w.data = dst;
  }
}

// ComfyUI quantizes some small tensors too (the projector): value = decode(code) * scale.
void WeightBinder::vector(const TensorView& t, const std::string& name, std::vector<float>& v) {
  if (!dtype_is_decodable(t.dtype) || t.dtype == DType::U8) {
    problems_.push_back("tensor '" + name +
                        "': expected a float dtype (F32, F16, BF16, fp8, I8 with a scale, or a GGUF block "
                        "type), found " +
                        std::string(dtype_name(t.dtype)));
    return;
  }
  v = to_float_tensor(t).data;
  const QuantCompanionNames names = quant_companion_names(name);
  if (!names.comfy_quant.empty() && ckpt_.find(names.comfy_quant)) {
    used_.insert(names.comfy_quant);
    const ComfyQuant q = parse_comfy_quant(*ckpt_.find(names.comfy_quant), ckpt_.source());
    if (q.rotation_group != 0)
      problems_.push_back("tensor '" + name +
                          "': a convrot rotation on a non-Linear tensor is not supported");
  }
  companion(names.input_scale);
  const TensorView* s = companion(names.weight_scale);
  if (!s) {
    if (t.dtype == DType::I8)
      problems_.push_back("tensor '" + name + "': an I8 tensor needs its scale '" + names.weight_scale[0] +
                          "'");
    return;
  }
  const Tensor scale = to_float_tensor(*s);
  const int64_t rows = t.shape.empty() ? 1 : t.shape[0];
  if (scale.numel() == 1) {
    for (float& x : v) x *= scale.data[0];
  } else if (scale.numel() == rows && rows > 0) {
    const size_t per_row = v.size() / size_t(rows);
    for (size_t i = 0; i < v.size(); ++i) v[i] *= scale.data[i / per_row];
  } else {
    problems_.push_back("tensor '" + s->name + "': expected one scale or one per row, found shape " +
                        shape_str(s->shape));
  }
}

void throw_binding_problems(const std::string& headline, const std::vector<std::string>& problems) {
  if (problems.empty()) return;
  if (problems.size() == 1) throw Error(headline + ": " + problems[0]);  // one line
  std::ostringstream os;
  os << headline << " (" << problems.size() << " problems):";
  for (size_t i = 0; i < problems.size() && i < 20; ++i) os << "\n  " << problems[i];
  if (problems.size() > 20) os << "\n  ... and " << problems.size() - 20 << " more";
  throw Error(os.str());
}

}  // namespace krea2
