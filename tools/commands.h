// The krea2 subcommands. Each takes the arguments after its name and returns the process exit code; errors
// are thrown as krea2::Error and reported by main().
#pragma once

namespace krea2::cli {

int cmd_forward(int argc, char** argv);
int cmd_inspect(int argc, char** argv);
int cmd_generate(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_quantize(int argc, char** argv);
int cmd_encode(int argc, char** argv);
int cmd_decode(int argc, char** argv);
int cmd_tokenize(int argc, char** argv);

}  // namespace krea2::cli
