#include "model/gguf_config.h"
#if __has_include("io/gguf.h")
#include "io/gguf.h"
#endif
namespace krea2 {
Config apply_gguf_config_metadata(const GgufFile&, const Config& base, std::vector<std::string>*, std::vector<std::string>*) { return base; }
}
