// What the C API's files share: the handle structs, the exception-to-status guard, tensor conversions.
#pragma once
#include <cstring>
#include <exception>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "krea2/krea2.h"
#include "krea2/lora.h"
#include "krea2/model.h"
#include "krea2/pipeline.h"
#include "krea2/tensor.h"
#include "krea2/text_encoder.h"
#include "krea2/tokenizer.h"
#include "krea2/vae.h"

struct krea2_lora {
  krea2::LoraAdapter adapter;
};

struct krea2_transformer {
  krea2::Model base;   // as loaded
  krea2::Model model;  // with the adapters of krea2_transformer_set_loras
};

struct krea2_text_encoder {
  krea2::TextEncoder encoder;
  krea2::Tokenizer tokenizer;
};

struct krea2_vae {
  krea2::Vae vae;
};

struct krea2_pipeline {
  krea2::Pipeline pipeline;
};

namespace krea2::capi {

// Thrown by the argument checks: becomes KREA2_ERROR_INVALID_ARGUMENT.
struct InvalidArgument {
  std::string message;
};

// Records `message` as this thread's last error and returns `status`.
krea2_status fail(krea2_status status, const std::string& message);
void clear_error();
// Applies the process-wide thread count (options.threads, once set) to the calling thread: OpenMP keeps the
// count per thread, and a caller may load on one thread and compute on another.
void apply_threads();

// A caller's versioned struct (struct_size first): `defaults` overlaid with the first struct_size bytes the
// caller gave (a smaller struct from an older header keeps the defaults of the fields it lacks); null gives
// the defaults. A size below `min_size` or above this header's is an invalid argument naming `what` and the
// `init` function that fills it.
template <class T>
T read_versioned(const T* given, T defaults, size_t min_size, const char* what, const char* init) {
  if (!given) return defaults;
  if (given->struct_size < min_size || given->struct_size > sizeof(T))
    throw InvalidArgument{std::string(what) + ".struct_size is " + std::to_string(given->struct_size) +
                          ": initialise the " + (std::string(what) == "params" ? "parameters" : "options") +
                          " with " + init};
  std::memcpy(&defaults, given, given->struct_size);
  return defaults;
}

// The options (defaults when null), checked; applies the process-wide ones (threads, ISA cap).
krea2_options read_options(const krea2_options* options, const char* function);
Compute to_compute(krea2_compute c, const char* what);

// A caller tensor as an owning float32 tensor (F32 / F16 / BF16 / integer / BOOL).
Tensor to_tensor(const krea2_tensor* t, const char* what);
// Checks `out` is F32 with exactly `shape`, then copies `value` into it.
void write_tensor(krea2_tensor* out, const Tensor& value, const char* what);
// Checks `t` is non-null and has exactly `shape` (any dtype check is the caller's).
void check_shape(const krea2_tensor* t, const Shape& shape, const char* what);
Shape shape_of(const krea2_tensor* t);

void require(const void* pointer, const char* what);
// The C struct of a model's numbers.
void fill_info(const Model& model, krea2_transformer_info* info);
// The (adapter, strength) list of a C call; strengths NULL = 1 each.
std::vector<LoraSpec> lora_specs(const krea2_lora* const* loras, const float* strengths, size_t count);
// A C string argument; null is an invalid argument.
std::string string_arg(const char* s, const char* what);

// The C progress callback as a std::function that throws Cancelled when it returns non-zero.
struct Progress {
  krea2_progress_fn fn = nullptr;
  void* user = nullptr;
  void operator()(const char* stage, int done, int total) const;
};

// Runs `body`, mapping every exception to a status and message (nothing crosses the C boundary).
template <class F>
krea2_status guard(const char* function, F&& body) noexcept {
  try {
    clear_error();
    apply_threads();
    body();
    return KREA2_OK;
  } catch (const InvalidArgument& e) {
    return fail(KREA2_ERROR_INVALID_ARGUMENT, std::string(function) + ": " + e.message);
  } catch (const Cancelled& e) {
    return fail(KREA2_ERROR_CANCELLED, std::string(function) + ": " + e.what());
  } catch (const Error& e) {
    return fail(KREA2_ERROR_BAD_INPUT, e.what());
  } catch (const std::bad_alloc&) {
    return fail(KREA2_ERROR_OUT_OF_MEMORY, std::string(function) + ": out of memory");
  } catch (const std::exception& e) {
    return fail(KREA2_ERROR_INTERNAL, std::string(function) + ": " + e.what());
  } catch (...) {
    return fail(KREA2_ERROR_INTERNAL, std::string(function) + ": unknown error");
  }
}

}  // namespace krea2::capi
