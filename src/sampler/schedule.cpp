// The FlowMatchEulerDiscreteScheduler schedule as the Krea 2 pipeline sets it up: the pipeline passes
// np.linspace(1, 1/steps, steps) (float64) as custom sigmas, the scheduler casts them to float32, applies the
// time shift with numpy float32 arithmetic (the Python-float mu term is rounded to float32 first), appends a
// terminal 0 and sets timesteps = sigmas * 1000. Each operation below is one float32 numpy/torch operation,
// so the result is bit-identical to upstream.
#include <cmath>
#include <cstdlib>
#include <string>

#include "krea2/error.h"
#include "krea2/sampler.h"

namespace krea2 {
namespace {

// numpy.linspace(start, stop, n) in float64: start + i * step with step = (stop - start) / (n - 1), the last
// value set to `stop` exactly.
std::vector<double> linspace(double start, double stop, int n) {
  std::vector<double> out(static_cast<size_t>(n));
  if (n == 1) {
    out[0] = start;
    return out;
  }
  double step = (stop - start) / (n - 1);
  for (int i = 0; i < n; ++i) out[static_cast<size_t>(i)] = i * step + start;
  out.back() = stop;
  return out;
}

float shift_sigma(float s, float m, TimeShift shift) {
  // (1/t - 1) ** 1.0 is exact, so it is left out.
  float r = 1.0f / s;
  r = r - 1.0f;
  switch (shift) {
    case TimeShift::kExponential:
    case TimeShift::kLinear: {
      float den = m + r;
      return m / den;
    }
    case TimeShift::kNone:
      return s;
  }
  return s;
}

}  // namespace

double calculate_shift(int64_t image_seq_len, const ShiftConfig& c) {
  double m = (c.max_shift - c.base_shift) / static_cast<double>(c.max_image_seq_len - c.base_image_seq_len);
  double b = c.base_shift - m * static_cast<double>(c.base_image_seq_len);
  return static_cast<double>(image_seq_len) * m + b;
}

Schedule make_schedule(const ScheduleOptions& options, int64_t image_seq_len) {
  std::vector<float> base;
  if (!options.custom_sigmas.empty()) {
    base = options.custom_sigmas;
    for (size_t i = 0; i < base.size(); ++i) {
      if (!(base[i] > 0.0f && base[i] <= 1.0f)) {
        throw Error("sigma " + std::to_string(i) + " = " + std::to_string(base[i]) + " is outside (0, 1]");
      }
    }
  } else {
    if (options.steps < 1) throw Error("steps must be at least 1, got " + std::to_string(options.steps));
    for (double v : linspace(1.0, 1.0 / options.steps, options.steps)) base.push_back(static_cast<float>(v));
  }

  Schedule out;
  out.mu = options.mu      ? *options.mu
           : options.turbo ? kTurboMu
                           : calculate_shift(image_seq_len, options.config);
  if (!std::isfinite(out.mu)) throw Error("mu must be finite");
  if (options.shift == TimeShift::kLinear && !(out.mu > 0)) throw Error("the linear time shift needs mu > 0");
  // The scheduler computes math.exp(mu) (or mu) as a Python float; numpy rounds it to float32 when it meets
  // the float32 sigma array.
  float m = static_cast<float>(options.shift == TimeShift::kExponential ? std::exp(out.mu) : out.mu);
  for (float s : base) {
    float shifted = shift_sigma(s, m, options.shift);
    out.sigmas.push_back(shifted);
    out.timesteps.push_back(shifted * 1000.0f);
  }
  out.sigmas.push_back(0.0f);
  return out;
}

std::vector<float> parse_sigmas(const std::string& text) {
  std::vector<float> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(pos, comma - pos);
    const char* begin = item.c_str();
    char* end = nullptr;
    double v = std::strtod(begin, &end);
    while (end && (*end == ' ' || *end == '\t')) ++end;
    if (item.empty() || end == begin || *end != '\0')
      throw Error("bad sigma '" + item + "' in '" + text + "'");
    // Upstream: np.array(sigmas).astype(np.float32), i.e. parsed as float64 then rounded.
    out.push_back(static_cast<float>(v));
    pos = comma + 1;
  }
  return out;
}

}  // namespace krea2
