#!/usr/bin/env bash
# The GPU checks of the CUDA backend in one run (issue 15), for a lent GPU machine whose time is scarce:
#
#   scripts/gpu-check.sh RESULTS_DIR [BUILD_DIR]
#
# BUILD_DIR (default build) is a build folder made beforehand on any machine with nvcc (`cmake -S . -B build
# -DCMAKE_BUILD_TYPE=Release && cmake --build build -j --target test_cuda_ops test_cuda_block`): nothing is
# compiled here.
# Writes into RESULTS_DIR: nvidia-smi.txt and, per test program (test_cuda_ops: every kernel against the CPU
# references; test_cuda_block: a transformer block against the CPU forward), NAME.log and NAME.json (gtest's
# JSON report).
# Exits non-zero when a test fails or the GPU cannot be used (a test that skips for want of a device fails
# the script, since on a GPU machine it must run).
set -euo pipefail
results=${1:?usage: scripts/gpu-check.sh RESULTS_DIR [BUILD_DIR]}
build=${2:-build}
mkdir -p "$results"
nvidia-smi >"$results/nvidia-smi.txt" 2>&1 || echo "nvidia-smi failed (see $results/nvidia-smi.txt)"
start=$(date +%s)
status=0
for name in test_cuda_ops test_cuda_block; do
  tests="$build/tests/$name"
  [ -x "$tests" ] || { echo "no $tests: build it first (see the header of this script)" >&2; exit 1; }
  "$tests" --gtest_output="json:$results/$name.json" 2>&1 | tee "$results/$name.log" || status=$?
  if grep -q "not run on this machine" "$results/$name.log"; then
    echo "$name: the CUDA tests were skipped: no usable CUDA device" >&2
    status=1
  fi
done
echo "gpu-check: finished with status $status in $(($(date +%s) - start)) s; results in $results"
exit "$status"
