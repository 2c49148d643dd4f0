#!/usr/bin/env python3
"""torch's matrix products on the shapes bench_train --gemm-shapes timed, for
tests/bench/compare-cpu.sh --gemm: how much of the training-step gap to
PyTorch is the BLAS underneath (torch's CPU wheels use MKL; the workbench uses
Debian's OpenBLAS).

Each shape is "linear:role:m:n:k:count" with role fwd (x @ W.T, as
F.linear), dx (dy @ W) or dw (dy.T @ x); each is timed over about half a
second on fp32 tensors and printed as a RESULT line like bench_train's. A
benchmark, not a test: without torch it prints one SKIP line and exits 0.

    python3 tests/bench/torch_gemm_bench.py --threads 2 --shapes q_proj:fwd:2048:512:512:8,...
"""
import argparse
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--shapes", required=True)
    args = ap.parse_args()
    try:
        import torch
    except ImportError as e:
        print(f"SKIP: torch_gemm_bench: {e.name} is not installed")
        return 0
    torch.set_num_threads(args.threads)
    for spec in args.shapes.split(","):
        linear, role, m, n, k, count = spec.split(":")
        m, n, k = int(m), int(n), int(k)
        # The operands as a training step holds them: x [tokens, in],
        # W [out, in], dy [tokens, out]; the transposes are views, as in autograd.
        if role == "fwd":    # m = tokens, n = out, k = in
            a, b = torch.full((m, k), 0.25), torch.full((n, k), 0.5).t()
        elif role == "dx":   # m = tokens, n = in, k = out
            a, b = torch.full((m, k), 0.125), torch.full((k, n), 0.5)
        elif role == "dw":   # m = out, n = in, k = tokens
            a, b = torch.full((k, m), 0.125).t(), torch.full((k, n), 0.25)
        else:
            raise SystemExit(f"torch_gemm_bench: unknown role {role!r} in {spec!r}")
        torch.mm(a, b)
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 0.5:
            torch.mm(a, b)
            reps += 1
        t = time.perf_counter() - t0
        print(f"RESULT side=pytorch linear={linear} role={role} m={m} n={n} k={k} count={count} "
              f"gflops={2.0 * m * n * k * reps / t / 1e9:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
