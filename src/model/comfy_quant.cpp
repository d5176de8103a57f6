#include "model/comfy_quant.h"

#include <nlohmann/json.hpp>

#include "krea2/error.h"

namespace krea2 {

ComfyQuant parse_comfy_quant(const TensorView& t, const std::string& source) {
  const std::string where = source + ": tensor '" + t.name + "'";
  if (t.dtype != DType::U8 && t.dtype != DType::I8)
    throw Error(where + ": expected U8 bytes of JSON, found dtype " + std::string(dtype_name(t.dtype)));
  const auto* text = reinterpret_cast<const char*>(t.data);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text, text + t.nbytes);
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": not valid JSON: " + e.what());
  }
  if (!j.is_object() || !j.contains("format") || !j["format"].is_string())
    throw Error(where + ": expected a JSON object with a string \"format\", found " + j.dump());
  ComfyQuant q;
  q.format = j["format"].get<std::string>();
  if (q.format == "float8_e4m3fn") {
    q.dtype = DType::F8_E4M3;
  } else if (q.format == "float8_e5m2") {
    q.dtype = DType::F8_E5M2;
  } else if (q.format == "int8_tensorwise") {
    q.dtype = DType::I8;
  } else {
    throw Error(where + ": quantization format \"" + q.format +
                "\" is not supported (supported: float8_e4m3fn, float8_e5m2, int8_tensorwise)");
  }
  const auto convrot = j.find("convrot");
  if (convrot != j.end() && !convrot->is_boolean())
    throw Error(where + ": \"convrot\" must be true or false, found " + convrot->dump());
  if (convrot != j.end() && convrot->get<bool>()) {
    const auto g = j.find("convrot_groupsize");
    if (g == j.end() || !g->is_number_integer() || g->get<int64_t>() < 4 || g->get<int64_t>() > (1 << 20))
      throw Error(where + ": convrot needs an integer \"convrot_groupsize\" (a power of 4), found " +
                  (g == j.end() ? std::string("none") : g->dump()));
    q.rotation_group = g->get<int64_t>();
  }
  return q;
}

}  // namespace krea2
