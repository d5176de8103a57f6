#!/usr/bin/env python3
"""Per-call cost of the bindings: one transformer forward through the C++ library, the C API and the Python
module, on the same model and input shapes (medians; the C++ / C rounds interleave in one process, the Python
rounds follow).

    PYTHONPATH=build/python /usr/bin/python3 scripts/bench_bindings.py [MODEL_DIR] [ROUNDS]

Sizes: the fixture's tiny model with 4 image / 4 text tokens (where compute is nothing and the fixed cost shows),
and the demo pipeline's transformer with 1024 image + 64 text tokens."""
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

import krea2

ROOT = os.path.join(os.path.dirname(__file__), "..")
BENCH = os.path.join(ROOT, "build", "bench", "krea2_bench_bindings")


def python_median(model_dir, n, l, rounds):
    m = krea2.Krea2Transformer2DModel.from_pretrained(model_dir)
    c = m.config
    rng = np.random.default_rng(0)
    hs = rng.standard_normal((1, n, c["in_channels"]), dtype=np.float32)
    ehs = rng.standard_normal((1, l, c["num_text_layers"], c["text_hidden_dim"]), dtype=np.float32)
    ts = np.array([0.5], np.float32)
    pos = np.zeros((l + n, 3), np.float32)
    pos[l:, 1] = np.arange(n) // 32
    pos[l:, 2] = np.arange(n) % 32
    times = []
    for r in range(rounds + 2):
        t0 = time.perf_counter()
        m(hs, ehs, ts, pos)
        if r >= 2:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    cases = [(os.path.join(ROOT, "tests/fixtures/tiny/transformer"), 4, 4, rounds * 50),
             (sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests/fixtures/demo_pipeline/transformer"),
              1024, 64, rounds)]
    for model_dir, n, l, r in cases:
        out = subprocess.run([BENCH, model_dir, str(n), str(l), str(r)], check=True, capture_output=True,
                             text=True).stdout
        result = json.loads(out)
        py = python_median(model_dir, n, l, r)
        result["python_s"] = py
        result["python_overhead_pct"] = 100 * (py - result["cpp_s"]) / result["cpp_s"]
        result["python_overhead_us"] = 1e6 * (py - result["cpp_s"])
        result["model"] = os.path.relpath(model_dir, ROOT)
        print(json.dumps(result))


if __name__ == "__main__":
    main()
