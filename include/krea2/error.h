// Error type thrown by every krea2 API on bad input; the message names the file/tensor and expected vs found.
#pragma once
#include <stdexcept>
#include <string>

namespace krea2 {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace krea2
