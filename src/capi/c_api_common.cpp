// The C API's shared parts: errors, version, options, tensor conversion.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>

#include "capi/c_api_internal.h"
#include "cpu/cpu_features.h"
#include "krea2/image.h"
#include "ops/gemm.h"
#include "tensor/convert.h"

namespace krea2::capi {

namespace {
thread_local std::string t_last_error;
std::atomic<int> g_threads{0};  // 0: never set (OpenMP's default)
}  // namespace

void apply_threads() {
  const int n = g_threads.load(std::memory_order_relaxed);
  if (n > 0 && omp_get_max_threads() != n) omp_set_num_threads(n);
}

krea2_status fail(krea2_status status, const std::string& message) {
  t_last_error = message;
  return status;
}

void clear_error() {
  t_last_error.clear();
}

void require(const void* pointer, const char* what) {
  if (!pointer) throw InvalidArgument{std::string(what) + " is NULL"};
}

std::string string_arg(const char* s, const char* what) {
  require(s, what);
  return s;
}

Compute to_compute(krea2_compute c, const char* what) {
  switch (c) {
    case KREA2_COMPUTE_F32:
      return Compute::kF32;
    case KREA2_COMPUTE_BF16:
      return Compute::kBf16;
    case KREA2_COMPUTE_INT8:
      return Compute::kInt8;
  }
  throw InvalidArgument{std::string(what) + " must be KREA2_COMPUTE_F32, _BF16 or _INT8, got " +
                        std::to_string(int(c))};
}

krea2_options read_options(const krea2_options* options, const char* function) {
  krea2_options defaults;
  krea2_options_init(&defaults);
  const krea2_options o = read_versioned(
      options, defaults, offsetof(krea2_options, threads) + sizeof(int32_t), "options", "krea2_options_init");
  to_compute(o.compute, "options.compute");
  to_compute(o.text_compute, "options.text_compute");
  if (o.threads < 0 || o.threads > 1024)
    throw InvalidArgument{"options.threads must be in 0..1024, got " + std::to_string(o.threads)};
  if (o.isa != KREA2_ISA_DEFAULT && o.isa != KREA2_ISA_AVX2 && o.isa != KREA2_ISA_AVX512)
    throw InvalidArgument{"options.isa must be KREA2_ISA_DEFAULT, _AVX2 or _AVX512, got " +
                          std::to_string(int(o.isa))};
  if (o.isa != KREA2_ISA_DEFAULT) {
    const Isa isa = o.isa == KREA2_ISA_AVX2 ? Isa::kAvx2 : Isa::kAvx512;
    if (!isa_supported(isa))
      throw Error(std::string(function) + ": options.isa " + isa_name(isa) +
                  " is not available: " + isa_missing(isa));
    set_isa_cap(isa);
  }
  if (o.threads > 0) {
    g_threads = o.threads;
    omp_set_num_threads(o.threads);
  }
  return o;
}

Shape shape_of(const krea2_tensor* t) {
  return Shape(t->shape, t->shape + std::clamp<int32_t>(t->ndim, 0, KREA2_MAX_DIMS));
}

namespace {

size_t element_size(krea2_dtype d) {
  switch (d) {
    case KREA2_F32:
    case KREA2_I32:
      return 4;
    case KREA2_F16:
    case KREA2_BF16:
      return 2;
    case KREA2_I64:
      return 8;
    case KREA2_U8:
    case KREA2_BOOL:
      return 1;
  }
  return 0;
}

// The checked element count of a caller tensor.
int64_t checked_numel(const krea2_tensor* t, const char* what) {
  require(t, what);
  if (t->ndim < 0 || t->ndim > KREA2_MAX_DIMS)
    throw InvalidArgument{std::string(what) + ".ndim must be in 0.." + std::to_string(KREA2_MAX_DIMS) +
                          ", got " + std::to_string(t->ndim)};
  if (element_size(t->dtype) == 0)
    throw InvalidArgument{std::string(what) + ".dtype " + std::to_string(int(t->dtype)) +
                          " is not a krea2_dtype"};
  int64_t n = 1;
  for (int32_t i = 0; i < t->ndim; ++i) {
    const int64_t d = t->shape[i];
    if (d < 0)
      throw InvalidArgument{std::string(what) + " has a negative dimension: " + shape_str(shape_of(t))};
    if (d > 0 && n > std::numeric_limits<int64_t>::max() / 16 / d)
      throw InvalidArgument{std::string(what) + " is too large: " + shape_str(shape_of(t))};
    n *= d;
  }
  if (n > 0 && !t->data) throw InvalidArgument{std::string(what) + ".data is NULL"};
  return n;
}

}  // namespace

Tensor to_tensor(const krea2_tensor* t, const char* what) {
  const int64_t n = checked_numel(t, what);
  Tensor out(shape_of(t));
  float* dst = out.ptr();
  const void* src = t->data;
  switch (t->dtype) {
    case KREA2_F32:
      if (n) std::memcpy(dst, src, size_t(n) * 4);
      break;
    case KREA2_F16:
      widen_to_f32(DType::F16, src, dst, size_t(n));
      break;
    case KREA2_BF16:
      widen_to_f32(DType::BF16, src, dst, size_t(n));
      break;
    case KREA2_I64:
      for (int64_t i = 0; i < n; ++i) dst[i] = float(static_cast<const int64_t*>(src)[i]);
      break;
    case KREA2_I32:
      for (int64_t i = 0; i < n; ++i) dst[i] = float(static_cast<const int32_t*>(src)[i]);
      break;
    case KREA2_U8:
      for (int64_t i = 0; i < n; ++i) dst[i] = float(static_cast<const uint8_t*>(src)[i]);
      break;
    case KREA2_BOOL:
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<const uint8_t*>(src)[i] ? 1.0f : 0.0f;
      break;
  }
  return out;
}

void check_shape(const krea2_tensor* t, const Shape& shape, const char* what) {
  checked_numel(t, what);
  if (shape_of(t) != shape)
    throw InvalidArgument{std::string(what) + " must have shape " + shape_str(shape) + ", got " +
                          shape_str(shape_of(t))};
}

void write_tensor(krea2_tensor* out, const Tensor& value, const char* what) {
  check_shape(out, value.shape, what);
  if (out->dtype != KREA2_F32) throw InvalidArgument{std::string(what) + " must be KREA2_F32"};
  if (value.numel()) std::memcpy(out->data, value.ptr(), size_t(value.numel()) * sizeof(float));
}

void Progress::operator()(const char* stage, int done, int total) const {
  if (fn && fn(user, stage, done, total) != 0) throw Cancelled();
}

}  // namespace krea2::capi

using namespace krea2;
using namespace krea2::capi;

extern "C" {

const char* krea2_version(void) {
  return "0.1.0";
}

int krea2_version_number(void) {
  return KREA2_VERSION_MAJOR * 10000 + KREA2_VERSION_MINOR * 100 + KREA2_VERSION_PATCH;
}

const char* krea2_cpu_info(void) {
  static thread_local std::string info;
  info = "cpu " + cpu_brand() + "\nfeatures " + cpu_features_string() + "\nisa " + isa_name(active_isa()) +
         " (detected " + isa_name(detected_isa()) + ", cap " + isa_name(isa_cap()) + " from " +
         isa_cap_source() + ")\ngemm " + gemm_kernel_name() + "\n";
  return info.c_str();
}

const char* krea2_last_error(void) {
  return t_last_error.c_str();
}

const char* krea2_status_name(krea2_status status) {
  switch (status) {
    case KREA2_OK:
      return "ok";
    case KREA2_ERROR_INVALID_ARGUMENT:
      return "invalid argument";
    case KREA2_ERROR_BAD_INPUT:
      return "bad input";
    case KREA2_ERROR_CANCELLED:
      return "cancelled";
    case KREA2_ERROR_OUT_OF_MEMORY:
      return "out of memory";
    case KREA2_ERROR_INTERNAL:
      return "internal error";
  }
  return "unknown status";
}

void krea2_options_init(krea2_options* options) {
  if (!options) return;
  *options = krea2_options{};
  options->struct_size = sizeof(krea2_options);
  options->isa = KREA2_ISA_DEFAULT;
  options->compute = KREA2_COMPUTE_F32;
  options->text_compute = KREA2_COMPUTE_F32;
  options->keep_loaded = 1;
}

krea2_status krea2_write_png(const char* path, const uint8_t* rgb, int64_t height, int64_t width,
                             const char* const* keys, const char* const* values, size_t count) {
  return guard("krea2_write_png", [&] {
    const std::string p = string_arg(path, "path");
    require(rgb, "rgb");
    if (height < 1 || width < 1 || height > 65536 || width > 65536)
      throw InvalidArgument{"height and width must be in 1..65536, got " + std::to_string(height) + " x " +
                            std::to_string(width)};
    if (count) {
      require(keys, "keys");
      require(values, "values");
    }
    Rgb8Image image;
    image.height = height;
    image.width = width;
    image.pixels.assign(rgb, rgb + size_t(height * width * 3));
    for (size_t i = 0; i < count; ++i)
      image.text.emplace_back(string_arg(keys[i], "keys[i]"), string_arg(values[i], "values[i]"));
    write_png(p, image);
  });
}

}  // extern "C"
