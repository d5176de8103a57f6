// Per-call cost of the C API against the C++ library: one transformer forward through Model::forward and
// through krea2_transformer_forward (libkrea2.so), interleaved rounds, medians. scripts/bench_bindings.py
// times the Python module on the same model and shapes.
//   build/bench/krea2_bench_bindings MODEL_DIR IMAGE_TOKENS TEXT_TOKENS [ROUNDS]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "krea2/krea2.h"
#include "krea2/model.h"

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

krea2_tensor view(krea2::Tensor& t) {
  krea2_tensor v{};
  v.data = t.ptr();
  v.dtype = KREA2_F32;
  v.ndim = int32_t(t.shape.size());
  for (size_t i = 0; i < t.shape.size(); ++i) v.shape[i] = t.shape[i];
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s MODEL_DIR IMAGE_TOKENS TEXT_TOKENS [ROUNDS]\n", argv[0]);
    return 2;
  }
  const int64_t N = std::atoll(argv[2]), L = std::atoll(argv[3]);
  const int rounds = argc > 4 ? std::atoi(argv[4]) : 20;
  const krea2::Model model = krea2::Model::load(argv[1]);
  krea2_transformer* handle = nullptr;
  if (krea2_transformer_load(argv[1], nullptr, &handle) != KREA2_OK) {
    std::fprintf(stderr, "%s\n", krea2_last_error());
    return 1;
  }
  const krea2::Config& c = model.config();
  std::mt19937 rng(0);
  std::normal_distribution<float> normal;
  auto random = [&](krea2::Shape s) {
    krea2::Tensor t(std::move(s));
    for (float& x : t.data) x = normal(rng);
    return t;
  };
  krea2::ForwardInputs in;
  in.hidden_states = random({1, N, c.in_channels});
  in.encoder_hidden_states = random({1, L, c.num_text_layers, c.text_hidden_dim});
  in.timestep = krea2::Tensor({1}, {0.5f});
  in.position_ids = krea2::Tensor({L + N, 3});
  for (int64_t i = 0; i < N; ++i) {
    in.position_ids.data[size_t((L + i) * 3 + 1)] = float(i / 32);
    in.position_ids.data[size_t((L + i) * 3 + 2)] = float(i % 32);
  }
  krea2_tensor hs = view(in.hidden_states), ehs = view(in.encoder_hidden_states), ts = view(in.timestep),
               pos = view(in.position_ids);
  const krea2_forward_inputs cin{&hs, &ehs, &ts, &pos, nullptr};
  krea2::Tensor out({1, N, c.in_channels});
  krea2_tensor cout = view(out);
  std::vector<double> cpp, capi;
  for (int r = 0; r < rounds + 2; ++r) {  // the first two rounds warm up
    double t0 = now();
    const krea2::Tensor v = model.forward(in);
    const double a = now() - t0;
    t0 = now();
    if (krea2_transformer_forward(handle, &cin, &cout, nullptr) != KREA2_OK) {
      std::fprintf(stderr, "%s\n", krea2_last_error());
      return 1;
    }
    const double b = now() - t0;
    if (r >= 2) cpp.push_back(a), capi.push_back(b);
    if (v.data != out.data) {
      std::fprintf(stderr, "the C API's output differs from Model::forward's\n");
      return 1;
    }
  }
  const double m_cpp = median(cpp), m_c = median(capi);
  std::printf(
      "{\"image_tokens\": %lld, \"text_tokens\": %lld, \"rounds\": %d, \"cpp_s\": %.9f, \"c_api_s\": %.9f, "
      "\"c_api_overhead_pct\": %.3f}\n",
      (long long)N, (long long)L, rounds, m_cpp, m_c, 100.0 * (m_c - m_cpp) / m_cpp);
  krea2_transformer_free(handle);
  return 0;
}
