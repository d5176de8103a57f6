// krea2 inspect --text-encoder PATH: what a text-encoder file holds and how krea2 reads it.
#pragma once
#include <string>

namespace krea2::cli {

int inspect_text_encoder(const std::string& path, bool json);

}  // namespace krea2::cli
