#!/usr/bin/env python3
"""Times `krea2 bench` on every weight type, interleaved (round r runs every type once, so a noisy spell of the
shared host hits all types alike), and prints a Markdown table: median seconds, speed relative to the F32 weights,
peak RSS, and (first round, --compare-f32) the output's rel L2 error against the float32 weights of the same draw
with the stored bits per parameter.

  python3 scripts/bench_weights.py [--rounds 3] [--types F32,Q8_0,...] [-- extra krea2 bench options]

Default bench options: --layers 2 --image-tokens 1024 --text-tokens 64 (the real width, two blocks)."""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TYPES = ["F32", "BF16", "F16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q4_K_M", "Q4_K_S", "Q5_0", "Q5_1", "Q4_0",
         "Q4_1", "Q3_K_M", "Q3_K_S", "fp8", "int8-convrot"]


def bench(cli, args):
    out = subprocess.run([cli, "bench", *args, "--json", "--quiet"], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"krea2 bench {' '.join(args)} failed:\n{out.stderr}{out.stdout}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--types", default=",".join(TYPES))
    p.add_argument("--cli", default=os.path.join(ROOT, "build", "krea2"))
    p.add_argument("--no-compare", action="store_true", help="skip the rel L2 error column")
    p.add_argument("extra", nargs="*", help="krea2 bench options (after --)")
    a = p.parse_args()
    base = a.extra or ["--layers", "2", "--image-tokens", "1024", "--text-tokens", "64"]
    types = a.types.split(",")
    # The FMA peak once, then every run reuses it (and skips the per-run ceiling).
    first = bench(a.cli, base + ["--weights", "F32", "--reps", "1", "--warmup", "0"])
    peak = first["peak_gflops"]
    print(f"FMA peak {peak:.1f} GFLOP/s; bench options: {' '.join(base)}", file=sys.stderr)
    runs = {t: [] for t in types}
    for r in range(a.rounds):
        for t in types:
            args = base + ["--weights", t, "--reps", "1", "--warmup", "1", "--peak-gflops", str(peak)]
            if r == 0 and t != "F32" and not a.no_compare:
                args.append("--compare-f32")
            j = bench(a.cli, args)
            runs[t].append(j)
            print(f"round {r + 1}: {t:13s} {j['median_s']:.3f} s  rss {j['peak_rss_bytes'] / 2**30:.2f} GiB",
                  file=sys.stderr)
    f32 = statistics.median(j["median_s"] for j in runs["F32"]) if "F32" in runs else None
    print(f"| weights | bits / param | rel L2 vs F32 | median s | speed vs F32 | GFLOP/s | % of peak | peak RSS |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for t in types:
        js = runs[t]
        med = statistics.median(j["median_s"] for j in js)
        gf = js[0]["flops"] / med / 1e9
        bits = js[0].get("bits_per_weight", 32.0 if t == "F32" else None)
        err = js[0].get("rel_l2_vs_f32", 0.0 if t == "F32" else None)
        rss = max(j["peak_rss_bytes"] for j in js) / 2**30
        speed = f"{100 * f32 / med:.1f} %" if f32 else "-"
        bits_s = f"{bits:.2f}" if bits is not None else "-"
        err_s = f"{err:.2e}" if err is not None else "-"
        print(f"| {t} | {bits_s} | {err_s} | {med:.3f} | {speed} | {gf:.1f} | {100 * gf / peak:.1f} % "
              f"| {rss:.2f} GiB |")
    print(f"\n(median of {a.rounds} interleaved rounds; FMA peak {peak:.1f} GFLOP/s)")


if __name__ == "__main__":
    main()
