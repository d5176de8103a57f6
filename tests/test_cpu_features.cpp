// Run-time CPU detection and the ISA cap: our cpuid / xgetbv reading agrees with the compiler's own
// detection (__builtin_cpu_supports), the levels follow the features, the cap lowers the active level and
// never raises it past what the machine has, and the CLI reports and applies it (--version, --isa,
// KREA2_ISA, bench JSON).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "cpu/cpu_features.h"
#include "support/test_util.h"

namespace krea2 {
namespace {

using ::testing::HasSubstr;

TEST(CpuFeatures, AgreeWithTheCompilersDetection) {
  const CpuFeatures& f = cpu_features();
  // GCC's libgcc checks cpuid and, for AVX / AVX-512, the OS-enabled register state, as we do.
  EXPECT_EQ(f.avx2, bool(__builtin_cpu_supports("avx2")));
  EXPECT_EQ(f.fma, bool(__builtin_cpu_supports("fma")));
  EXPECT_EQ(f.avx512f, bool(__builtin_cpu_supports("avx512f")));
  EXPECT_EQ(f.avx512bw, bool(__builtin_cpu_supports("avx512bw")));
  EXPECT_EQ(f.avx512vl, bool(__builtin_cpu_supports("avx512vl")));
  EXPECT_EQ(f.avx512dq, bool(__builtin_cpu_supports("avx512dq")));
  EXPECT_EQ(f.avx512_vnni, bool(__builtin_cpu_supports("avx512vnni")));
  EXPECT_EQ(f.avx512_bf16, bool(__builtin_cpu_supports("avx512bf16")));
  EXPECT_TRUE(f.avx2 && f.fma && f.f16c) << "below the build floor: " << cpu_features_string();
  EXPECT_FALSE(cpu_brand().empty());
}

TEST(CpuFeatures, NamesAndLevels) {
  for (Isa isa : kIsaLevels) EXPECT_EQ(parse_isa(isa_name(isa)), isa);
  EXPECT_FALSE(parse_isa("avx3").has_value());
  EXPECT_FALSE(parse_isa("").has_value());
  const CpuFeatures& f = cpu_features();
  const bool avx512 = f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.os_zmm;
  EXPECT_EQ(detected_isa(), avx512 ? Isa::kAvx512 : Isa::kAvx2);
  EXPECT_TRUE(isa_supported(Isa::kAvx2));
  EXPECT_EQ(isa_missing(Isa::kAvx2), "");
  EXPECT_EQ(isa_supported(Isa::kAvx512), avx512);
  EXPECT_EQ(isa_missing(Isa::kAvx512).empty(), avx512) << isa_missing(Isa::kAvx512);
  const std::string s = cpu_features_string();
  for (const std::string& name : cpu_feature_names()) EXPECT_THAT(s, HasSubstr(name));
  EXPECT_THAT(s, HasSubstr("avx2"));
}

TEST(CpuFeatures, CapLowersTheActiveLevel) {
  const Isa saved = isa_cap();
  set_isa_cap(Isa::kAvx2);
  EXPECT_EQ(active_isa(), Isa::kAvx2);
  EXPECT_STREQ(isa_cap_source(), "set_isa_cap");
  set_isa_cap(Isa::kAvx512);
  EXPECT_EQ(active_isa(), detected_isa());  // never above what the machine has
  set_isa_cap(saved);
}

// ---- the CLI

TEST(IsaCli, VersionReportsFeaturesAndKernels) {
  std::string out;
  ASSERT_EQ(test::run_command("env -u KREA2_ISA " + test::cli_path() + " --version", &out), 0)
      << out;  // ctest may run under KREA2_ISA
  EXPECT_THAT(out, HasSubstr("features " + cpu_features_string()));
  EXPECT_THAT(out, HasSubstr(std::string("isa      ") + isa_name(detected_isa())));
  EXPECT_THAT(out, HasSubstr(std::string("gemm ") + isa_name(detected_isa())));
  ASSERT_EQ(test::run_command("KREA2_ISA=avx2 " + test::cli_path() + " --version", &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("isa      avx2 (detected " + std::string(isa_name(detected_isa())) +
                             ", cap avx2 from KREA2_ISA)"));
  EXPECT_THAT(out, HasSubstr("gemm avx2 6x16"));
  EXPECT_NE(test::run_command("KREA2_ISA=sse2 " + test::cli_path() + " --version", &out), 0);
  EXPECT_THAT(out, HasSubstr("KREA2_ISA must be avx2 or avx512, found 'sse2'"));
}

// The last line of `output` that is a JSON object.
nlohmann::json json_line(const std::string& output) {
  std::istringstream lines(output);
  std::string line, last;
  while (std::getline(lines, line))
    if (!line.empty() && line.front() == '{') last = line;
  return nlohmann::json::parse(last);
}

TEST(IsaCli, BenchTakesIsaAndReportsIt) {
  const std::string bench = test::cli_path() + " bench --config " + test::fixture_dir("tiny") +
                            "/transformer/config.json --layers 1 --image-tokens 8 --text-tokens 3 --reps 1"
                            " --warmup 0 --peak-gflops 50 --json --quiet";
  for (Isa isa : kIsaLevels) {
    if (!isa_supported(isa)) continue;
    SCOPED_TRACE(isa_name(isa));
    std::string out;
    // The option wins over the environment.
    const std::string env = isa == Isa::kAvx2 ? "KREA2_ISA=avx512 " : "KREA2_ISA=avx2 ";
    ASSERT_EQ(test::run_command(env + bench + " --isa " + isa_name(isa), &out), 0) << out;
    const nlohmann::json j = json_line(out);
    EXPECT_EQ(j["isa"], isa_name(isa));
    EXPECT_EQ(j["isa_detected"], isa_name(detected_isa()));
    EXPECT_EQ(j["isa_cap_source"], "set_isa_cap");
    EXPECT_EQ(j["cpu_features"], nlohmann::json(cpu_feature_names()));
    EXPECT_EQ(j["gemm_kernel"].get<std::string>().rfind(isa_name(isa), 0), 0u) << j["gemm_kernel"];
    // The blocking printed is the variant's (its MC a multiple of its MR).
    EXPECT_EQ(j["gemm_blocking"][0].get<int>() % (isa == Isa::kAvx512 ? 12 : 6), 0);
  }
  std::string out;
  EXPECT_NE(test::run_command(bench + " --isa avx3", &out), 0);
  EXPECT_THAT(out, HasSubstr("--isa must be avx2 or avx512, found 'avx3'"));
  if (!isa_supported(Isa::kAvx512)) {
    EXPECT_NE(test::run_command(bench + " --isa avx512", &out), 0);
    EXPECT_THAT(out, HasSubstr("--isa avx512: " + isa_missing(Isa::kAvx512)));
  }
}

TEST(IsaCli, ForwardAndGenerateTakeIsa) {
  for (const char* command : {"forward", "generate"}) {
    SCOPED_TRACE(command);
    std::string out;
    EXPECT_EQ(test::run_command(test::cli_path() + " " + command + " --help", &out), 0);
    EXPECT_THAT(out, HasSubstr("--isa LEVEL"));
    // Checked before anything is loaded.
    EXPECT_NE(test::run_command(test::cli_path() + " " + command + " --isa avx3 --model x --output y", &out),
              0);
    EXPECT_THAT(out, HasSubstr("--isa must be avx2 or avx512, found 'avx3'"));
  }
}

}  // namespace
}  // namespace krea2
