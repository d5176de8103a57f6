// Placeholder until the generate command lands.
#include "commands.h"
#include "krea2/error.h"

namespace krea2::cli {
int cmd_generate(int, char**) { throw Error("'generate' is not implemented yet"); }
}  // namespace krea2::cli
