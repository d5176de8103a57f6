// krea2 inspect --lora FILE [MODEL]: what an adapter file holds, resolved against a model's parameters.
#pragma once
#include <string>

namespace krea2::cli {

// Prints the summary (text, or one JSON object); `model_path` empty: the default Krea 2 config.
int inspect_lora(const std::string& lora_path, const std::string& model_path, bool json);

}  // namespace krea2::cli
