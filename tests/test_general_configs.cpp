// Model::forward against the independent float64 reference (tests/support/reference_forward, itself validated
// on the upstream fixtures by test_reference_fixtures) on configurations and inputs the fixtures do not
// cover: other head dims and rope splits, MQA / no GQA, missing text blocks, 0 or 1 layers, unusual masks
// (one valid token, holes in the middle, a fully masked sample), N = 1, L = 1, odd grids, arbitrary
// positions, bf16/f16 weights.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "krea2/model.h"
#include "support/reference_forward.h"
#include "support/test_util.h"

namespace krea2 {
namespace {

// The fixtures' tolerances (case.json): ~40x the float32 noise floor.
constexpr double kRelL2 = 1e-5;
constexpr double kMaxAbsOverMaxRef = 1e-4;
// Two float32 runs that differ only in dropping masked rows (skip_padded_text, garbage padding): the masked
// rows contribute exact zeros, so only summation order may change.
constexpr double kSameComputationRelL2 = 1e-6;

// ---- Configurations
// --------------------------------------------------------------------------------------------------

// A small config in the fixtures' style: hidden 32 (4 heads of 8, GQA 4:2), text 24 (3 heads of 8, MQA).
Config base_config() {
  Config c;
  c.in_channels = 8;
  c.num_layers = 2;
  c.attention_head_dim = 8;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.intermediate_size = 48;
  c.timestep_embed_dim = 16;
  c.text_hidden_dim = 24;
  c.num_text_layers = 3;
  c.text_num_attention_heads = 3;
  c.text_num_key_value_heads = 1;
  c.text_intermediate_size = 32;
  c.num_layerwise_text_blocks = 1;
  c.num_refiner_text_blocks = 1;
  c.axes_dims_rope = {4, 2, 2};
  c.rope_theta = 1000.0;
  c.norm_eps = 1e-5;
  return c;
}

struct ConfigCase {
  std::string name;
  Config config;
  DType dtype = DType::F32;
};

// Applies `edit` to the base config.
template <typename F>
ConfigCase make_config(const std::string& name, F edit, DType dtype = DType::F32) {
  Config c = base_config();
  edit(c);
  c.validate();
  return {name, c, dtype};
}

std::vector<ConfigCase> config_cases() {
  return {
      make_config("hd8_gqa", [](Config&) {}),
      make_config("hd16_mqa_theta1e4",
                  [](Config& c) {
                    c.attention_head_dim = 16;
                    c.num_attention_heads = 2;
                    c.num_key_value_heads = 1;
                    c.axes_dims_rope = {8, 4, 4};
                    c.rope_theta = 10000.0;
                    c.text_hidden_dim = 32;
                    c.text_num_attention_heads = 2;
                    c.text_num_key_value_heads = 2;
                  }),
      make_config("hd32_nogqa_theta256",
                  [](Config& c) {
                    c.attention_head_dim = 32;
                    c.num_attention_heads = 2;
                    c.num_key_value_heads = 2;
                    c.axes_dims_rope = {16, 8, 8};
                    c.rope_theta = 256.0;
                    c.intermediate_size = 96;
                  }),
      make_config("hd64_zero_t_axis",
                  [](Config& c) {
                    c.attention_head_dim = 64;
                    c.num_attention_heads = 1;
                    c.num_key_value_heads = 1;
                    c.axes_dims_rope = {0, 32, 32};
                    c.intermediate_size = 80;
                  }),
      make_config("hd16_uneven_rope",
                  [](Config& c) {
                    c.attention_head_dim = 16;
                    c.num_attention_heads = 3;
                    c.num_key_value_heads = 3;
                    c.axes_dims_rope = {2, 4, 10};
                    c.rope_theta = 256.0;
                  }),
      make_config("hd8_only_t_axis",
                  [](Config& c) {
                    c.axes_dims_rope = {8, 0, 0};
                  }),
      make_config("hd4_h_axis_zero",
                  [](Config& c) {
                    c.attention_head_dim = 4;
                    c.num_attention_heads = 6;
                    c.num_key_value_heads = 3;
                    c.axes_dims_rope = {2, 0, 2};
                  }),
      make_config("mqa_main_and_text",
                  [](Config& c) {
                    c.num_key_value_heads = 1;
                    c.text_hidden_dim = 32;
                    c.text_num_attention_heads = 4;
                    c.text_num_key_value_heads = 1;
                  }),
      make_config("no_gqa_main_and_text",
                  [](Config& c) {
                    c.num_key_value_heads = 4;
                    c.text_num_key_value_heads = 3;
                  }),
      make_config("no_layerwise", [](Config& c) { c.num_layerwise_text_blocks = 0; }),
      make_config("no_refiner", [](Config& c) { c.num_refiner_text_blocks = 0; }),
      make_config("no_text_blocks",
                  [](Config& c) {
                    c.num_layerwise_text_blocks = 0;
                    c.num_refiner_text_blocks = 0;
                  }),
      make_config("layers0", [](Config& c) { c.num_layers = 0; }),
      make_config("layers1", [](Config& c) { c.num_layers = 1; }),
      make_config("text_layers1",
                  [](Config& c) {
                    c.num_text_layers = 1;
                    c.num_layerwise_text_blocks = 2;
                  }),
      make_config("text_layers5", [](Config& c) { c.num_text_layers = 5; }),
      make_config("text_hd24_main_hd8",
                  [](Config& c) {
                    c.text_hidden_dim = 48;
                    c.text_num_attention_heads = 2;
                    c.text_num_key_value_heads = 1;
                  }),
      make_config("text_hd2_six_heads",
                  [](Config& c) {
                    c.text_hidden_dim = 12;
                    c.text_num_attention_heads = 6;
                    c.text_num_key_value_heads = 2;
                  }),
      make_config("eps_1e-2", [](Config& c) { c.norm_eps = 1e-2; }),
      make_config("channels4_tdim8",
                  [](Config& c) {
                    c.in_channels = 4;
                    c.timestep_embed_dim = 8;
                  }),
      make_config("channels64_tdim64",
                  [](Config& c) {
                    c.in_channels = 64;
                    c.timestep_embed_dim = 64;
                  }),
      // Sizes that are not multiples of the SIMD width anywhere (odd text head dim: the text path has no
      // rope).
      make_config("odd_sizes",
                  [](Config& c) {
                    c.in_channels = 5;
                    c.attention_head_dim = 6;
                    c.num_attention_heads = 3;
                    c.num_key_value_heads = 1;
                    c.axes_dims_rope = {2, 2, 2};
                    c.intermediate_size = 37;
                    c.timestep_embed_dim = 10;
                    c.text_hidden_dim = 15;
                    c.text_num_attention_heads = 5;
                    c.text_num_key_value_heads = 5;
                    c.text_intermediate_size = 23;
                  }),
      make_config("deep",
                  [](Config& c) {
                    c.num_layers = 4;
                    c.num_layerwise_text_blocks = 2;
                    c.num_refiner_text_blocks = 3;
                  }),
      make_config(
          "bf16_hd8", [](Config&) {}, DType::BF16),
      make_config(
          "bf16_hd16_mqa",
          [](Config& c) {
            c.attention_head_dim = 16;
            c.num_attention_heads = 2;
            c.num_key_value_heads = 1;
            c.axes_dims_rope = {8, 4, 4};
          },
          DType::BF16),
      make_config(
          "f16_hd8", [](Config&) {}, DType::F16),
  };
}

// gtest prints parameters of failing tests: the name says it all.
void PrintTo(const ConfigCase& c, std::ostream* os) {
  *os << c.name;
}

// The named entry of config_cases().
ConfigCase config_named(const std::string& name) {
  for (const ConfigCase& c : config_cases())
    if (c.name == name) return c;
  throw Error("no config case " + name);
}

// ---- Inputs
// ----------------------------------------------------------------------------------------------------------

enum class Positions {
  kPipeline,   // text rows (0,0,0), image rows (0, row, col) row-major, as Krea2Pipeline builds them
  kArbitrary,  // every row random (non-integer, up to +-40), text rows included
};

struct InputCase {
  std::string name;
  int64_t batch = 1;
  int64_t text_len = 1;
  int64_t grid_h = 1;
  int64_t grid_w = 1;
  std::vector<std::vector<int>> masks;  // per sample, text_len entries; empty = no mask (None)
  Positions positions = Positions::kPipeline;
  std::vector<float> timesteps;  // per sample; empty = random in [0, 1]
};

// Non-aggregate construction keeps -Wmissing-field-initializers quiet for the optional trailing fields.
InputCase input(std::string name, int64_t batch, int64_t text_len, int64_t grid_h, int64_t grid_w,
                std::vector<std::vector<int>> masks = {}, Positions positions = Positions::kPipeline,
                std::vector<float> timesteps = {}) {
  InputCase ic;
  ic.name = std::move(name);
  ic.batch = batch;
  ic.text_len = text_len;
  ic.grid_h = grid_h;
  ic.grid_w = grid_w;
  ic.masks = std::move(masks);
  ic.positions = positions;
  ic.timesteps = std::move(timesteps);
  return ic;
}

// A longer sequence (S = 136) so that blocked kernels cross their tile edges, with scattered holes in one
// sample and a long padded suffix in the other.
InputCase long_sequence_case() {
  std::vector<std::vector<int>> masks(2, std::vector<int>(37, 1));
  for (int l = 0; l < 37; ++l) {
    masks[0][size_t(l)] = l % 5 != 3;
    masks[1][size_t(l)] = l < 20;
  }
  return input("long_seq_136", 2, 37, 9, 11, masks);
}

// (name, batch, L, grid h, grid w, masks, positions, timesteps)
std::vector<InputCase> input_cases() {
  return {
      input("b1_nomask", 1, 4, 2, 2),
      input("b1_mask_all_valid", 1, 4, 2, 2, {{1, 1, 1, 1}}),
      // Batch 3: all valid, one valid token, holes in the middle; also the timestep extremes 1 and 0.
      input("b3_valid_one_middlehole", 3, 5, 3, 5, {{1, 1, 1, 1, 1}, {0, 0, 1, 0, 0}, {1, 0, 0, 1, 1}},
            Positions::kPipeline, {1.0f, 0.0f, 0.37f}),
      input("b2_fully_masked", 2, 4, 2, 3, {{0, 0, 0, 0}, {1, 1, 0, 0}}),
      input("b1_fully_masked", 1, 3, 2, 2, {{0, 0, 0}}),
      input("n1_l1", 2, 1, 1, 1, {{1}, {0}}),
      input("l0_no_text", 2, 0, 2, 2),
      input("odd_grid_1x7", 1, 3, 1, 7, {{1, 0, 1}}),
      input("arbitrary_positions", 2, 6, 3, 3, {{1, 1, 0, 1, 1, 1}, {0, 1, 1, 1, 1, 0}},
            Positions::kArbitrary),
      input("arbitrary_positions_nomask", 1, 3, 2, 3, {}, Positions::kArbitrary),
      long_sequence_case(),
  };
}

void PrintTo(const InputCase& c, std::ostream* os) {
  *os << c.name;
}

Tensor random_tensor(const Shape& shape, uint64_t seed, float scale = 1.0f) {
  return Tensor(shape, test::random_floats(static_cast<size_t>(shape_numel(shape)), seed, scale));
}

ForwardInputs make_inputs(const Config& c, const InputCase& ic, uint64_t seed) {
  const int64_t B = ic.batch, L = ic.text_len, N = ic.grid_h * ic.grid_w;
  ForwardInputs in;
  in.hidden_states = random_tensor({B, N, c.in_channels}, seed + 1);
  in.encoder_hidden_states = random_tensor({B, L, c.num_text_layers, c.text_hidden_dim}, seed + 2);
  in.timestep = random_tensor({B}, seed + 3);
  for (float& t : in.timestep.data) t = 0.5f * (t + 1.0f);  // [0, 1]
  if (!ic.timesteps.empty()) in.timestep.data = ic.timesteps;
  in.position_ids = Tensor({L + N, 3});
  if (ic.positions == Positions::kPipeline) {
    for (int64_t r = 0; r < ic.grid_h; ++r)
      for (int64_t col = 0; col < ic.grid_w; ++col) {
        float* p = &in.position_ids.data[size_t((L + r * ic.grid_w + col) * 3)];
        p[1] = static_cast<float>(r);
        p[2] = static_cast<float>(col);
      }
  } else {
    in.position_ids = random_tensor({L + N, 3}, seed + 4, 40.0f);
  }
  if (!ic.masks.empty()) {
    Tensor m({B, L});
    for (int64_t b = 0; b < B; ++b)
      for (int64_t l = 0; l < L; ++l)
        m.data[size_t(b * L + l)] = static_cast<float>(ic.masks.at(size_t(b)).at(size_t(l)));
    in.encoder_attention_mask = m;
  }
  return in;
}

// ---- Comparison helpers
// ----------------------------------------------------------------------------------------------

bool all_finite(const Tensor& t) {
  for (float v : t.data)
    if (!std::isfinite(v)) return false;
  return true;
}

struct Diff {
  double rel = 0;
  double max_abs = 0;
  double max_ref = 0;
  bool within() const { return rel <= kRelL2 && max_abs <= kMaxAbsOverMaxRef * max_ref; }
};

Diff diff(const Tensor& got, const Tensor& ref) {
  const size_t n = ref.data.size();
  return {test::rel_l2(got.ptr(), ref.ptr(), n), test::max_abs_diff(got.ptr(), ref.ptr(), n),
          test::max_abs(ref.ptr(), n)};
}

// Where a mismatch starts: rel L2 of every stage Model::forward traced (skip_padded_text = false, so the
// traces have the reference's shapes) against the reference's trace.
std::string stage_report(const std::map<std::string, Tensor>& model_trace,
                         const std::map<std::string, Tensor>& ref_trace, int num_layers) {
  std::vector<std::string> order = {"time_embed",  "time_mod_proj", "rotary_emb.cos", "rotary_emb.sin",
                                    "text_fusion", "txt_in",        "img_in"};
  for (int i = 0; i < num_layers; ++i) order.push_back("transformer_blocks." + std::to_string(i));
  order.push_back("final_layer");
  std::ostringstream os;
  os << "per-stage rel L2 (model vs reference):\n";
  for (const std::string& name : order) {
    auto r = ref_trace.find(name);
    auto m = model_trace.find(name);
    os << "  " << name << ": ";
    if (r == ref_trace.end() || m == model_trace.end()) {
      os << "missing\n";
    } else if (r->second.shape != m->second.shape) {
      os << "shape " << shape_str(m->second.shape) << " vs " << shape_str(r->second.shape) << "\n";
    } else {
      os << diff(m->second, r->second).rel << "\n";
    }
  }
  return os.str();
}

// ---- Model::forward == reference on every config x input
// -------------------------------------------------------------

class GeneralConfig : public ::testing::TestWithParam<std::tuple<ConfigCase, InputCase>> {};

TEST_P(GeneralConfig, ForwardMatchesReference) {
  const auto& [cc, ic] = GetParam();
  const uint64_t seed = std::hash<std::string>{}(cc.name + "/" + ic.name);
  const Model model = Model::random(cc.config, cc.dtype, seed);
  const ForwardInputs in = make_inputs(cc.config, ic, seed);

  std::map<std::string, Tensor> ref_trace;
  const Tensor ref = test::reference_forward(model, in, &ref_trace);
  ASSERT_TRUE(all_finite(ref));
  ASSERT_GT(test::max_abs(ref.ptr(), ref.data.size()), 0.0);

  Tensor got[2];
  for (int skip = 0; skip < 2; ++skip) {
    SCOPED_TRACE(skip ? "skip_padded_text = true" : "skip_padded_text = false");
    ForwardOptions options;
    options.skip_padded_text = skip != 0;
    std::map<std::string, Tensor> model_trace;
    if (!skip) options.trace = &model_trace;
    got[skip] = model.forward(in, options);
    ASSERT_EQ(got[skip].shape, ref.shape);
    EXPECT_TRUE(all_finite(got[skip]));
    const Diff d = diff(got[skip], ref);
    ::testing::Test::RecordProperty(skip ? "rel_l2_skip" : "rel_l2_noskip",
                                    (std::ostringstream() << d.rel).str());
    EXPECT_TRUE(d.within()) << "rel L2 " << d.rel << " (tol " << kRelL2 << "), max abs " << d.max_abs
                            << " (tol " << kMaxAbsOverMaxRef * d.max_ref << ")\n"
                            << (skip ? "" : stage_report(model_trace, ref_trace, cc.config.num_layers));
  }
  // Dropping padded text rows is exact: the two modes agree far inside the reference tolerance.
  EXPECT_LE(diff(got[1], got[0]).rel, kSameComputationRelL2);
}

std::string case_name(const ::testing::TestParamInfo<GeneralConfig::ParamType>& info) {
  std::string s = std::get<0>(info.param).name + "__" + std::get<1>(info.param).name;
  for (char& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
}

INSTANTIATE_TEST_SUITE_P(All, GeneralConfig,
                         ::testing::Combine(::testing::ValuesIn(config_cases()),
                                            ::testing::ValuesIn(input_cases())),
                         case_name);

// ---- Masked garbage tokens change nothing
// ----------------------------------------------------------------------------

// Inserts `count` masked text tokens holding huge values at index `at` of every sample (positions: text rows
// at the same rotary position as the neighbours would get in the pipeline, i.e. (0,0,0)).
ForwardInputs with_garbage(const ForwardInputs& in, const Config& c, int64_t at, int64_t count,
                           uint64_t seed) {
  const int64_t B = in.encoder_hidden_states.dim(0), L = in.encoder_hidden_states.dim(1);
  const int64_t N = in.hidden_states.dim(1), row = c.num_text_layers * c.text_hidden_dim, L2 = L + count;
  ForwardInputs out = in;
  out.encoder_hidden_states = Tensor({B, L2, c.num_text_layers, c.text_hidden_dim});
  Tensor mask({B, L2});
  const std::vector<float> junk = test::random_floats(size_t(B * count * row), seed, 1e4f);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t l = 0; l < L2; ++l) {
      float* dst = &out.encoder_hidden_states.data[size_t((b * L2 + l) * row)];
      const bool is_junk = l >= at && l < at + count;
      const int64_t src_l = l < at ? l : l - count;
      for (int64_t i = 0; i < row; ++i)
        dst[i] = is_junk ? junk[size_t((b * count + (l - at)) * row + i)]
                         : in.encoder_hidden_states.data[size_t((b * L + src_l) * row + i)];
      mask.data[size_t(b * L2 + l)] =
          is_junk
              ? 0.0f
              : (in.encoder_attention_mask ? in.encoder_attention_mask->data[size_t(b * L + src_l)] : 1.0f);
    }
  out.encoder_attention_mask = mask;
  out.position_ids = Tensor({L2 + N, 3});
  for (int64_t r = 0; r < L2 + N; ++r) {
    const bool is_junk = r >= at && r < at + count;
    const int64_t src = r < at ? r : r - count;
    for (int j = 0; j < 3; ++j)
      out.position_ids.data[size_t(r * 3 + j)] = is_junk ? 0.0f : in.position_ids.data[size_t(src * 3 + j)];
  }
  return out;
}

class GarbagePadding : public ::testing::TestWithParam<ConfigCase> {};

TEST_P(GarbagePadding, MaskedHugeTokensChangeNothing) {
  const ConfigCase& cc = GetParam();
  const Model model = Model::random(cc.config, cc.dtype, 7);
  for (const InputCase& ic : input_cases()) {
    const ForwardInputs in = make_inputs(cc.config, ic, 99);
    const Tensor clean = model.forward(in);
    const Tensor clean_ref = test::reference_forward(model, in);
    const int64_t L = ic.text_len;
    for (const int64_t at : {L, L / 2, int64_t(0)}) {
      SCOPED_TRACE(ic.name + ", 3 garbage tokens at " + std::to_string(at));
      const ForwardInputs padded = with_garbage(in, cc.config, at, 3, 1234);
      const Tensor ref = test::reference_forward(model, padded);
      EXPECT_LE(diff(ref, clean_ref).rel, 1e-12) << "the reference itself sees the garbage";
      for (const bool skip : {true, false}) {
        ForwardOptions options;
        options.skip_padded_text = skip;
        const Tensor got = model.forward(padded, options);
        EXPECT_TRUE(all_finite(got)) << "skip " << skip;
        EXPECT_LE(diff(got, clean).rel, kSameComputationRelL2) << "skip " << skip;
        EXPECT_TRUE(diff(got, ref).within()) << "skip " << skip << ": rel " << diff(got, ref).rel;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Some, GarbagePadding,
                         ::testing::Values(config_named("hd8_gqa"), config_named("hd16_mqa_theta1e4"),
                                           config_named("no_text_blocks"), config_named("bf16_hd8")),
                         [](const auto& info) { return info.param.name; });

// ---- A fully masked sample is a sample without text
// ------------------------------------------------------------------

// Its text rows are never attended to in the main blocks, so its image rows must equal those of the same
// sample with L = 0 (upstream would give NaN here; the product defines the finite answer).
TEST(FullyMaskedSample, EqualsSampleWithoutText) {
  for (const ConfigCase& cc :
       {config_named("hd8_gqa"), config_named("no_text_blocks"), config_named("bf16_hd8")}) {
    SCOPED_TRACE(cc.name);
    const Model model = Model::random(cc.config, cc.dtype, 11);
    const ForwardInputs masked = make_inputs(cc.config, input("masked", 1, 4, 2, 3, {{0, 0, 0, 0}}), 21);
    ForwardInputs bare = masked;
    bare.encoder_hidden_states = Tensor({1, 0, cc.config.num_text_layers, cc.config.text_hidden_dim});
    bare.encoder_attention_mask.reset();
    bare.position_ids = Tensor(
        {6, 3}, std::vector<float>(masked.position_ids.data.begin() + 4 * 3, masked.position_ids.data.end()));
    const Tensor ref = test::reference_forward(model, bare);
    EXPECT_EQ(test::reference_forward(model, masked).data, ref.data);
    const Tensor bare_got = model.forward(bare);
    EXPECT_TRUE(diff(bare_got, ref).within()) << diff(bare_got, ref).rel;
    for (const bool skip : {true, false}) {
      ForwardOptions options;
      options.skip_padded_text = skip;
      const Tensor got = model.forward(masked, options);
      EXPECT_TRUE(all_finite(got)) << "skip " << skip;
      EXPECT_LE(diff(got, bare_got).rel, kSameComputationRelL2) << "skip " << skip;
    }
  }
}

// ---- save / load round trip
// ------------------------------------------------------------------------------------------

class SaveLoad : public ::testing::TestWithParam<ConfigCase> {};

TEST_P(SaveLoad, RoundTripGivesIdenticalOutputs) {
  const ConfigCase& cc = GetParam();
  const Model model = Model::random(cc.config, cc.dtype, 3);
  test::TempDir dir;
  model.save(dir.path());
  const Model loaded = Model::load(dir.path());

  // Same parameters, bit for bit, in their stored dtypes.
  const std::vector<TensorView> a = model.parameters(), b = loaded.parameters();
  ASSERT_EQ(a.size(), b.size());
  std::map<std::string, const TensorView*> by_name;
  for (const TensorView& t : b) by_name[t.name] = &t;
  for (const TensorView& t : a) {
    auto it = by_name.find(t.name);
    ASSERT_NE(it, by_name.end()) << t.name;
    EXPECT_EQ(it->second->dtype, t.dtype) << t.name;
    ASSERT_EQ(it->second->shape, t.shape) << t.name;
    ASSERT_EQ(it->second->nbytes, t.nbytes) << t.name;
    EXPECT_EQ(std::memcmp(it->second->data, t.data, t.nbytes), 0) << t.name;
  }
  EXPECT_EQ(loaded.config().to_json_text(), model.config().to_json_text());

  const ForwardInputs in = make_inputs(cc.config, input_cases()[2], 5);
  EXPECT_EQ(loaded.forward(in).data, model.forward(in).data);
}

INSTANTIATE_TEST_SUITE_P(Some, SaveLoad,
                         ::testing::Values(config_named("hd8_gqa"), config_named("hd64_zero_t_axis"),
                                           config_named("layers0"), config_named("bf16_hd8"),
                                           config_named("f16_hd8")),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace krea2
