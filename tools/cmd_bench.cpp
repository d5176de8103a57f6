// Placeholder until the bench command lands.
#include "commands.h"
#include "krea2/error.h"

namespace krea2::cli {
int cmd_bench(int, char**) { throw Error("'bench' is not implemented yet"); }
}  // namespace krea2::cli
