#!/usr/bin/env bash
# Installs the build into a scratch prefix, then builds the C example as a separate project twice: with
# find_package(krea2) and with pkg-config, and runs both on the bundled demo pipeline.
# Usage: install_check.sh SOURCE_DIR BUILD_DIR SCRATCH_DIR
set -euo pipefail
src=$1 build=$2 scratch=$3
rm -rf "$scratch" && mkdir -p "$scratch"
cmake --install "$build" --prefix "$scratch/prefix" >"$scratch/install.log"
test -f "$scratch/prefix/include/krea2/krea2.h"
ls "$scratch"/prefix/lib*/libkrea2.so.0 >/dev/null
cmake -S "$src/examples" -B "$scratch/example" -DCMAKE_PREFIX_PATH="$scratch/prefix" >"$scratch/example.log"
cmake --build "$scratch/example" >>"$scratch/example.log"
"$scratch/example/krea2_example" "$src/tests/fixtures/demo_pipeline" "a red fox" "$scratch/fox.png" 64 64 2
test -s "$scratch/fox.png"
libdir=$(dirname "$(ls "$scratch"/prefix/lib*/libkrea2.so.0)")
export PKG_CONFIG_PATH="$libdir/pkgconfig"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -o "$scratch/example_pc" "$src/examples/generate.c" $(pkg-config --cflags --libs krea2) \
  -Wl,-rpath,"$libdir"
"$scratch/example_pc" "$src/tests/fixtures/demo_pipeline" "a red fox" "$scratch/fox_pc.png" 64 64 2
cmp "$scratch/fox.png" "$scratch/fox_pc.png"
echo "find_package and pkg-config builds ran and agree"

# The README's C and Python snippets (section "Embedding"), as written, against the installed prefix.
section=$(sed -n '/^## Embedding/,/^## Layout/p' "$src/README.md")
awk '/^```c$/{on=1;next} /^```/{on=0} on' <<<"$section" >"$scratch/readme.c"
awk '/^```python$/{on=1;next} /^```/{on=0} on' <<<"$section" >"$scratch/readme.py"
test -s "$scratch/readme.c" && test -s "$scratch/readme.py"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -o "$scratch/readme_c" "$scratch/readme.c" $(pkg-config --cflags --libs krea2) \
  -Wl,-rpath,"$libdir"
pydir=$(find "$scratch/prefix" -type d -name dist-packages | head -1)
(cd "$src" && "$scratch/readme_c" && test -s fox.png && rm fox.png)
(cd "$src" && PYTHONPATH="$pydir" /usr/bin/python3 "$scratch/readme.py" && test -s fox.png && rm fox.png)
echo "README snippets ran as written"
