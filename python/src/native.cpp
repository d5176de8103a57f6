// krea2._native: the C API (krea2/krea2.h) for Python through pybind11. numpy arrays in and out, the GIL
// released during compute, Ctrl-C (and a Python progress callback) cancelling through the progress callback.
// The diffusers-style classes are in krea2/__init__.py, over these handles.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "krea2/krea2.h"

namespace py = pybind11;

namespace {

PyObject* g_error = nullptr;      // krea2.Krea2Error (RuntimeError)
PyObject* g_invalid = nullptr;    // krea2.InvalidArgument (Krea2Error, ValueError)
PyObject* g_cancelled = nullptr;  // krea2.Cancelled (Krea2Error)

// What the progress callback saw: a pending KeyboardInterrupt or an exception from the Python callback is
// raised again once the C call has returned.
struct CallState {
  explicit CallState(py::object cb) : callback(std::move(cb)) {}
  py::object callback;  // None or callable(stage, done, total); False cancels
  bool interrupted = false;
  std::optional<py::error_already_set> callback_error;
};

int progress_trampoline(void* user, const char* stage, int done, int total) {
  auto* state = static_cast<CallState*>(user);
  py::gil_scoped_acquire gil;
  if (PyErr_CheckSignals() != 0) {  // Ctrl-C: the KeyboardInterrupt stays set, raised after the call
    state->interrupted = true;
    PyErr_Clear();
    return 1;
  }
  if (state->callback.is_none()) return 0;
  try {
    py::object r = state->callback(stage, done, total);
    return (py::isinstance<py::bool_>(r) && !r.cast<bool>()) ? 1 : 0;
  } catch (py::error_already_set& e) {
    state->callback_error.emplace(std::move(e));
    return 1;
  }
}

// Raises the Python exception for a failed call.
void check(krea2_status status, CallState* state = nullptr) {
  if (status == KREA2_OK) return;
  const std::string message = krea2_last_error();
  if (state && state->callback_error) throw *state->callback_error;
  if (state && state->interrupted) {
    PyErr_SetString(PyExc_KeyboardInterrupt, message.c_str());
    throw py::error_already_set();
  }
  switch (status) {
    case KREA2_ERROR_INVALID_ARGUMENT:
      PyErr_SetString(g_invalid, message.c_str());
      break;
    case KREA2_ERROR_CANCELLED:
      PyErr_SetString(g_cancelled, message.c_str());
      break;
    case KREA2_ERROR_OUT_OF_MEMORY:
      PyErr_SetString(PyExc_MemoryError, message.c_str());
      break;
    default:
      PyErr_SetString(g_error, message.c_str());
      break;
  }
  throw py::error_already_set();
}

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

krea2_tensor view(const FloatArray& a) {
  krea2_tensor t{};
  t.data = const_cast<float*>(a.data());
  t.dtype = KREA2_F32;
  if (a.ndim() > KREA2_MAX_DIMS) {
    PyErr_SetString(g_invalid, ("arrays of at most 8 dimensions, got " + std::to_string(a.ndim())).c_str());
    throw py::error_already_set();
  }
  t.ndim = int32_t(a.ndim());
  for (py::ssize_t i = 0; i < a.ndim(); ++i) t.shape[i] = a.shape(i);
  return t;
}

krea2_tensor view_mut(py::array& a, krea2_dtype dtype) {
  krea2_tensor t{};
  t.data = a.mutable_data();
  t.dtype = dtype;
  t.ndim = int32_t(a.ndim());
  for (py::ssize_t i = 0; i < a.ndim(); ++i) t.shape[i] = a.shape(i);
  return t;
}

krea2_compute compute_of(const std::string& name) {
  if (name == "f32") return KREA2_COMPUTE_F32;
  if (name == "bf16") return KREA2_COMPUTE_BF16;
  if (name == "int8") return KREA2_COMPUTE_INT8;
  PyErr_SetString(g_invalid, ("compute must be 'f32', 'bf16' or 'int8', got '" + name + "'").c_str());
  throw py::error_already_set();
}

krea2_options options_of(const std::string& compute, const std::string& text_compute, int threads,
                         const std::string& isa, bool keep_loaded, bool allow_unexpected) {
  krea2_options o;
  krea2_options_init(&o);
  o.compute = compute_of(compute);
  o.text_compute = compute_of(text_compute);
  o.threads = threads;
  if (isa == "avx2") {
    o.isa = KREA2_ISA_AVX2;
  } else if (isa == "avx512") {
    o.isa = KREA2_ISA_AVX512;
  } else if (!isa.empty()) {
    PyErr_SetString(g_invalid, ("isa must be 'avx2' or 'avx512', got '" + isa + "'").c_str());
    throw py::error_already_set();
  }
  o.keep_loaded = keep_loaded;
  o.allow_unexpected = allow_unexpected;
  return o;
}

// Runs a C call with the GIL released (the status is checked once it is held again).
template <class F>
krea2_status without_gil(F&& call) {
  py::gil_scoped_release release;
  return call();
}

const char* c_str_or_null(const std::optional<std::string>& s) {
  return s ? s->c_str() : nullptr;
}

py::dict dict_of(const krea2_transformer_info& i) {
  py::dict d;
  d["in_channels"] = i.in_channels;
  d["num_text_layers"] = i.num_text_layers;
  d["text_hidden_dim"] = i.text_hidden_dim;
  d["hidden_size"] = i.hidden_size;
  d["num_layers"] = i.num_layers;
  d["parameter_count"] = i.parameter_count;
  return d;
}

struct Lora {
  krea2_lora* handle = nullptr;
  explicit Lora(const std::string& path) { check(krea2_lora_load(path.c_str(), &handle)); }
  ~Lora() { krea2_lora_free(handle); }
};

std::vector<const krea2_lora*> lora_handles(const std::vector<std::shared_ptr<Lora>>& loras) {
  std::vector<const krea2_lora*> h;
  for (const auto& l : loras) h.push_back(l->handle);
  return h;
}

struct Transformer {
  krea2_transformer* handle = nullptr;
  Transformer(const std::string& path, const krea2_options& o) {
    check(without_gil([&] { return krea2_transformer_load(path.c_str(), &o, &handle); }));
  }
  ~Transformer() { krea2_transformer_free(handle); }

  py::dict info() const {
    krea2_transformer_info i;
    check(krea2_transformer_get_info(handle, &i));
    return dict_of(i);
  }

  void set_loras(const std::vector<std::shared_ptr<Lora>>& loras, const std::vector<float>& strengths,
                 bool merge) {
    if (strengths.size() != loras.size()) {
      PyErr_SetString(g_invalid, "set_loras: one strength per adapter");
      throw py::error_already_set();
    }
    const std::vector<const krea2_lora*> h = lora_handles(loras);
    check(without_gil(
        [&] { return krea2_transformer_set_loras(handle, h.data(), strengths.data(), h.size(), merge); }));
  }

  py::array forward(const FloatArray& hidden_states, const FloatArray& encoder_hidden_states,
                    const FloatArray& timestep, const FloatArray& position_ids,
                    const std::optional<FloatArray>& mask, float lora_scale, bool keep_padding,
                    py::object callback) {
    krea2_tensor hs = view(hidden_states), ehs = view(encoder_hidden_states), ts = view(timestep),
                 pos = view(position_ids), m{};
    if (mask) m = view(*mask);
    const krea2_forward_inputs in{&hs, &ehs, &ts, &pos, mask ? &m : nullptr};
    py::array_t<float> out(
        std::vector<py::ssize_t>(hidden_states.shape(), hidden_states.shape() + hidden_states.ndim()));
    krea2_tensor o = view_mut(out, KREA2_F32);
    CallState state(std::move(callback));
    krea2_forward_options f;
    krea2_forward_options_init(&f);
    f.lora_scale = lora_scale;
    f.keep_padding = keep_padding;
    f.progress = progress_trampoline;
    f.user = &state;
    check(without_gil([&] { return krea2_transformer_forward(handle, &in, &o, &f); }), &state);
    return out;
  }
};

struct TextEncoder {
  krea2_text_encoder* handle = nullptr;
  TextEncoder(const std::string& path, const std::optional<std::string>& tokenizer, const krea2_options& o) {
    check(without_gil(
        [&] { return krea2_text_encoder_load(path.c_str(), c_str_or_null(tokenizer), &o, &handle); }));
  }
  ~TextEncoder() { krea2_text_encoder_free(handle); }

  py::dict info() const {
    krea2_text_encoder_info i;
    check(krea2_text_encoder_get_info(handle, &i));
    py::dict d;
    d["hidden_size"] = i.hidden_size;
    d["num_layers"] = i.num_layers;
    d["num_default_taps"] = i.num_default_taps;
    return d;
  }

  py::tuple encode(const std::vector<std::string>& prompts, int64_t max_sequence_length,
                   int64_t num_images_per_prompt, const std::optional<std::vector<int32_t>>& taps,
                   py::object callback) {
    const py::dict i = info();
    const int64_t batch = int64_t(prompts.size()) * num_images_per_prompt;
    const int64_t ntaps = taps ? int64_t(taps->size()) : i["num_default_taps"].cast<int64_t>();
    py::array_t<float> embeds({batch, max_sequence_length, ntaps, i["hidden_size"].cast<int64_t>()});
    py::array_t<bool> mask({batch, max_sequence_length});
    krea2_tensor e = view_mut(embeds, KREA2_F32), m = view_mut(mask, KREA2_BOOL);
    std::vector<const char*> texts;
    for (const auto& p : prompts) texts.push_back(p.c_str());
    CallState state(std::move(callback));
    krea2_encode_options o;
    krea2_encode_options_init(&o);
    o.max_sequence_length = max_sequence_length;
    o.num_images_per_prompt = num_images_per_prompt;
    if (taps) {
      o.taps = taps->data();
      o.num_taps = taps->size();
    }
    o.progress = progress_trampoline;
    o.user = &state;
    check(without_gil(
              [&] { return krea2_text_encoder_encode(handle, texts.data(), texts.size(), &o, &e, &m); }),
          &state);
    return py::make_tuple(embeds, mask);
  }
};

struct Vae {
  krea2_vae* handle = nullptr;
  Vae(const std::string& path, const krea2_options& o) {
    check(without_gil([&] { return krea2_vae_load(path.c_str(), &o, &handle); }));
  }
  ~Vae() { krea2_vae_free(handle); }

  // latents (B, z, h, w) or (B, z, 1, h, w) -> float (B, 3, H, W) in [-1, 1], or uint8 (B, H, W, 3).
  py::array decode(const FloatArray& latents, bool uint8, py::object callback) {
    krea2_tensor z = view(latents);
    const int64_t s = krea2_vae_scale_factor(handle);
    if (z.ndim < 4) {
      PyErr_SetString(g_invalid, "latents must be (B, C, h, w) or (B, C, 1, h, w)");
      throw py::error_already_set();
    }
    const int64_t B = z.shape[0], H = z.shape[z.ndim - 2] * s, W = z.shape[z.ndim - 1] * s;
    py::array out = uint8 ? py::array(py::array_t<uint8_t>({B, H, W, int64_t(3)}))
                          : py::array(py::array_t<float>({B, int64_t(3), H, W}));
    krea2_tensor o = view_mut(out, uint8 ? KREA2_U8 : KREA2_F32);
    CallState state(std::move(callback));
    check(without_gil([&] { return krea2_vae_decode(handle, &z, &o, progress_trampoline, &state); }), &state);
    return out;
  }
};

struct Pipeline {
  krea2_pipeline* handle = nullptr;
  Pipeline(const std::optional<std::string>& root, const std::optional<std::string>& transformer,
           const std::optional<std::string>& text_encoder, const std::optional<std::string>& tokenizer,
           const std::optional<std::string>& vae, const krea2_options& o) {
    const krea2_pipeline_paths p{c_str_or_null(root), c_str_or_null(transformer), c_str_or_null(text_encoder),
                                 c_str_or_null(tokenizer), c_str_or_null(vae)};
    check(without_gil([&] { return krea2_pipeline_load(&p, &o, &handle); }));
  }
  ~Pipeline() { krea2_pipeline_free(handle); }

  py::dict info() const {
    krea2_transformer_info i;
    check(krea2_pipeline_get_info(handle, &i));
    return dict_of(i);
  }

  // Returns (latents (B, C, h, w) float32, image (B, 3, H, W) float32 or None).
  py::tuple generate(const std::vector<std::string>& prompts,
                     const std::optional<std::string>& negative_prompt, int64_t height, int64_t width,
                     int32_t steps, double guidance, uint64_t seed, bool turbo, int64_t num_images_per_prompt,
                     int64_t max_sequence_length, const std::vector<std::shared_ptr<Lora>>& loras,
                     const std::vector<float>& strengths, float lora_scale,
                     const std::optional<FloatArray>& latents, bool decode,
                     const std::optional<FloatArray>& prompt_embeds,
                     const std::optional<FloatArray>& prompt_embeds_mask,
                     const std::optional<FloatArray>& negative_prompt_embeds,
                     const std::optional<FloatArray>& negative_prompt_embeds_mask, py::object callback) {
    if (strengths.size() != loras.size()) {
      PyErr_SetString(g_invalid, "one strength per adapter");
      throw py::error_already_set();
    }
    std::vector<const char*> texts;
    for (const auto& p : prompts) texts.push_back(p.c_str());
    const std::vector<const krea2_lora*> h = lora_handles(loras);
    CallState state(std::move(callback));
    krea2_generate_params g;
    krea2_generate_params_init(&g);
    g.prompts = texts.data();
    g.num_prompts = texts.size();
    g.negative_prompt = c_str_or_null(negative_prompt);
    g.height = height;
    g.width = width;
    g.steps = steps;
    g.guidance = guidance;
    g.seed = seed;
    g.turbo = turbo;
    g.num_images_per_prompt = num_images_per_prompt;
    g.max_sequence_length = max_sequence_length;
    g.loras = h.data();
    g.lora_strengths = strengths.data();
    g.num_loras = h.size();
    g.lora_scale = lora_scale;
    krea2_tensor z{};
    int64_t lh = height / 8, lw = width / 8;
    if (latents) {
      z = view(*latents);
      g.latents = &z;
      if (z.ndim == 4) lh = z.shape[2], lw = z.shape[3];
    }
    krea2_tensor pe{}, pm{}, ne{}, nm{};
    auto set = [](const std::optional<FloatArray>& a, krea2_tensor& t, const krea2_tensor*& field) {
      if (!a) return;
      t = view(*a);
      field = &t;
    };
    set(prompt_embeds, pe, g.prompt_embeds);
    set(prompt_embeds_mask, pm, g.prompt_embeds_mask);
    set(negative_prompt_embeds, ne, g.negative_prompt_embeds);
    set(negative_prompt_embeds_mask, nm, g.negative_prompt_embeds_mask);
    g.progress = progress_trampoline;
    g.user = &state;
    const int64_t B =
        prompt_embeds && pe.ndim > 0 ? pe.shape[0] : int64_t(prompts.size()) * num_images_per_prompt;
    const int64_t C = info()["in_channels"].cast<int64_t>() / 4;
    py::array_t<float> latents_out({B, C, std::max<int64_t>(lh, 0), std::max<int64_t>(lw, 0)});
    py::object image = py::none();
    krea2_tensor lo = view_mut(latents_out, KREA2_F32), io{};
    if (decode) {
      py::array_t<float> im({B, int64_t(3), std::max<int64_t>(lh * 8, 0), std::max<int64_t>(lw * 8, 0)});
      io = view_mut(im, KREA2_F32);
      image = im;
    }
    const krea2_generate_outputs outputs{nullptr, 0, decode ? &io : nullptr, &lo};
    check(without_gil([&] { return krea2_pipeline_generate(handle, &g, &outputs); }), &state);
    return py::make_tuple(latents_out, image);
  }
};

}  // namespace

PYBIND11_MODULE(_native, m) {
  m.doc() = "krea2's C API (libkrea2.so) for Python; use the classes of the krea2 package";
  g_error = PyErr_NewException("krea2.Krea2Error", PyExc_RuntimeError, nullptr);
  py::tuple invalid_bases = py::make_tuple(py::handle(g_error), py::handle(PyExc_ValueError));
  g_invalid = PyErr_NewException("krea2.InvalidArgument", invalid_bases.ptr(), nullptr);
  g_cancelled = PyErr_NewException("krea2.Cancelled", g_error, nullptr);
  m.attr("Krea2Error") = py::handle(g_error);
  m.attr("InvalidArgument") = py::handle(g_invalid);
  m.attr("Cancelled") = py::handle(g_cancelled);
  m.def("version", &krea2_version);
  m.def("cpu_info", &krea2_cpu_info);
  m.def("options", &options_of, py::arg("compute") = "f32", py::arg("text_compute") = "f32",
        py::arg("threads") = 0, py::arg("isa") = "", py::arg("keep_loaded") = true,
        py::arg("allow_unexpected") = false);
  py::class_<krea2_options>(m, "Options");

  py::class_<Lora, std::shared_ptr<Lora>>(m, "Lora").def(py::init<const std::string&>());
  py::class_<Transformer>(m, "Transformer")
      .def(py::init<const std::string&, const krea2_options&>())
      .def("info", &Transformer::info)
      .def("set_loras", &Transformer::set_loras)
      .def("forward", &Transformer::forward, py::arg("hidden_states"), py::arg("encoder_hidden_states"),
           py::arg("timestep"), py::arg("position_ids"), py::arg("mask"), py::arg("lora_scale"),
           py::arg("keep_padding"), py::arg("callback"));
  py::class_<TextEncoder>(m, "TextEncoder")
      .def(py::init<const std::string&, const std::optional<std::string>&, const krea2_options&>())
      .def("info", &TextEncoder::info)
      .def("encode", &TextEncoder::encode);
  py::class_<Vae>(m, "Vae")
      .def(py::init<const std::string&, const krea2_options&>())
      .def("decode", &Vae::decode);
  py::class_<Pipeline>(m, "Pipeline")
      .def(py::init<const std::optional<std::string>&, const std::optional<std::string>&,
                    const std::optional<std::string>&, const std::optional<std::string>&,
                    const std::optional<std::string>&, const krea2_options&>())
      .def("info", &Pipeline::info)
      .def("generate", &Pipeline::generate);
}
