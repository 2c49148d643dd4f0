#!/usr/bin/env bash
# Side-by-side CPU training throughput and memory: the workbench
# (bench_train --one) and PyTorch + PEFT (tests/bench/peft_cpu_bench.py),
# run ALTERNATELY (workbench, PyTorch, workbench, ...) so that a change in the
# machine's load hits both sides alike. Same model dimensions (bench_train
# prints them; random weights on both sides), batch, sequence, rank, alpha,
# targets (all seven projections), AdamW, thread count. Each measurement is a
# fresh process: tokens/s is its median step, peak RSS its getrusage maximum.
# OMP_NUM_THREADS and OPENBLAS_NUM_THREADS are set to the same count (the
# workbench refuses to run when they differ); torch.set_num_threads likewise.
#
#   tests/bench/compare-cpu.sh [--build DIR] [--python PY] [--models small,smollm2-135m]
#       [--methods full,lora,dora] [--threads 1,2] [--batch 8] [--seq 256] [--rank 8]
#       [--rounds 3] [--warmup 2] [--steps 5] [--gemm]
#
# Python: --python, else $LWB_BENCH_PYTHON, else a throwaway venv made here
# from PyPI (torch, transformers, peft); where none can be had the PyTorch
# side is skipped with a message and the workbench's figures still print.
# Prints one table row per (threads, model, method): medians over the
# rounds (min..max in brackets) and the ratios workbench / PyTorch: of the
# medians, and per round ("per round": median and min..max of each round's
# ratio, its two runs minutes apart, which is what the alternation protects
# from the machine's drift).
#
# With --gemm, the step's matrix products alone instead (bench_train
# --gemm-shapes beside tests/bench/torch_gemm_bench.py, alternately): GFLOP/s
# per linear shape and role (forward, input gradient, weight gradient), and
# what the step's products add up to, the frozen base's (LoRA: forward and
# input gradient) and full fine-tuning's (all three), in seconds per step,
# each beside the machine's FMA peak (bench_train's PEAK line): the share of
# it a product reaches, and the seconds the products would take at the peak.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="$root/build" python="${LWB_BENCH_PYTHON:-}" models="small,smollm2-135m" methods="full,lora,dora"
threads="1,2" batch=8 seq=256 rank=8 rounds=3 warmup=2 steps=5 gemm=0
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --methods) methods="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --seq) seq="$2"; shift 2 ;;
    --rank) rank="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --gemm) gemm=1; shift ;;
    -h|--help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare-cpu.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

bench="$build/tests/bench/bench_train"
[ -x "$bench" ] || { echo "compare-cpu.sh: $bench not found: build the target bench_train first" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ -z "$python" ]; then
  echo "compare-cpu.sh: no --python or LWB_BENCH_PYTHON: making a throwaway venv from PyPI in $work/venv"
  if python3 -m venv "$work/venv" >/dev/null 2>&1 &&
     "$work/venv/bin/pip" install --quiet torch transformers peft >"$work/pip.log" 2>&1; then
    python="$work/venv/bin/python"
  else
    echo "SKIP: PyTorch + PEFT could not be installed (see the pip log below); the workbench side runs alone"
    tail -5 "$work/pip.log" 2>/dev/null || true
  fi
fi
if [ -n "$python" ] && ! "$python" -c "import torch, transformers, peft" 2>/dev/null; then
  echo "SKIP: $python lacks torch, transformers or peft; the workbench side runs alone"
  python=""
fi
# The median of a space-separated list; lo[0] and hi[0] get its extremes.
awk_median='
  function median(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; ++i) for (j = i + 1; j <= n; ++j) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    lo[0] = a[1]; hi[0] = a[n]
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }'
if [ "$gemm" = 1 ]; then
  results="$work/gemm"
  : >"$results"
  for th in ${threads//,/ }; do
    export OMP_NUM_THREADS="$th" OPENBLAS_NUM_THREADS="$th" MKL_NUM_THREADS="$th"
    for model in ${models//,/ }; do
      for round in $(seq 1 "$rounds"); do
        out="$("$bench" --gemm-shapes --model "$model" --batch "$batch" --seq "$seq" || true)"
        lines="$(echo "$out" | grep '^RESULT' || true)"
        [ -n "$lines" ] || { echo "compare-cpu.sh: bench_train --gemm-shapes failed for $model" >&2; exit 1; }
        echo "$out" | grep -E '^(RESULT|PEAK)' | sed "s/^/run_threads=$th run_model=$model /" >>"$results"
        echo "  round $round  $th thread(s)  $model  workbench products timed"
        [ -n "$python" ] || continue
        shapes="$(echo "$lines" | awk '{ for (i = 1; i <= NF; ++i) { split($i, kv, "="); f[kv[1]] = kv[2] }
                   printf "%s%s:%s:%s:%s:%s:%s", (NR > 1 ? "," : ""), f["linear"], f["role"], f["m"], f["n"], f["k"], f["count"] }')"
        "$python" "$here/torch_gemm_bench.py" --threads "$th" --shapes "$shapes" | grep '^RESULT' |
          sed "s/^/run_threads=$th run_model=$model /" >>"$results" || true
        echo "  round $round  $th thread(s)  $model  pytorch products timed"
      done
    done
  done
  echo
  echo "matrix products of a step at batch $batch x seq $seq, GFLOP/s (median of $rounds alternating rounds)"
  awk "$awk_median"'
    {
      for (i = 1; i <= NF; ++i) { split($i, kv, "="); f[kv[1]] = kv[2] }
      if ($3 == "PEAK") { if (f["fma_gflops"] > 0) peaks[f["run_threads"]] = peaks[f["run_threads"]] " " f["fma_gflops"]; next }
      key = f["run_threads"] SUBSEP f["run_model"] SUBSEP f["linear"] SUBSEP f["role"]
      if (!(key in seen)) {
        seen[key] = 1; order[++n] = key
        flops[key] = 2 * f["m"] * f["n"] * f["k"] * f["count"]; dims[key] = f["m"] " x " f["n"] " x " f["k"]
      }
      rate[key, f["side"]] = rate[key, f["side"]] " " f["gflops"]
    }
    END {
      for (th in peaks) peak[th] = median(peaks[th])
      printf "%-7s %-14s %-18s %-4s %22s %12s %12s %8s %13s\n", "threads", "model", "linear", "role", "M x N x K",
             "workbench", "pytorch", "wb / pt", "wb % of peak"
      for (k = 1; k <= n; ++k) {
        key = order[k]; split(key, p, SUBSEP)
        w = median(rate[key, "workbench"]); t = ((key, "pytorch") in rate) ? median(rate[key, "pytorch"]) : 0
        printf "%-7s %-14s %-18s %-4s %22s %12.1f %12s %8s %13s\n", p[1], p[2], p[3], p[4], dims[key], w,
               t ? sprintf("%.1f", t) : "-", t ? sprintf("%.2fx", w / t) : "-",
               (p[1] in peak) ? sprintf("%.0f%%", 100 * w / peak[p[1]]) : "-"
        group = p[1] SUBSEP p[2]
        if (!(group in gseen)) { gseen[group] = 1; gorder[++g] = group }
        full_flops[group] += flops[key]
        if (p[4] != "dw") base_flops[group] += flops[key]
        for (s = 1; s <= 2; ++s) {
          side = s == 1 ? "w" : "t"; r = s == 1 ? w : t
          if (r <= 0) { missing[group] = 1; continue }
          full[group, side] += flops[key] / (r * 1e9)
          if (p[4] != "dw") base[group, side] += flops[key] / (r * 1e9)
        }
      }
      print ""
      printf "%-7s %-14s %-34s %12s %12s %8s %13s\n", "threads", "model", "seconds per step in products", "workbench",
             "pytorch", "wb / pt", "at FMA peak"
      for (k = 1; k <= g; ++k) {
        split(gorder[k], p, SUBSEP)
        for (s = 1; s <= 2; ++s) {
          what = s == 1 ? "frozen base (LoRA): fwd + dx" : "full fine-tuning: fwd + dx + dw"
          wt = s == 1 ? base[gorder[k], "w"] : full[gorder[k], "w"]
          tt = s == 1 ? base[gorder[k], "t"] : full[gorder[k], "t"]
          fl = s == 1 ? base_flops[gorder[k]] : full_flops[gorder[k]]
          printf "%-7s %-14s %-34s %12.3f %12s %8s %13s\n", p[1], p[2], what, wt,
                 (gorder[k] in missing) ? "-" : sprintf("%.3f", tt), (gorder[k] in missing) ? "-" : sprintf("%.2fx", tt / wt),
                 (p[1] in peak) ? sprintf("%.3f", fl / (peak[p[1]] * 1e9)) : "-"
        }
      }
      for (th in peak) printf "FMA peak (bench_train, registers only) at %s thread(s): %.1f GFLOP/s\n", th, peak[th]
    }' "$results"
  exit 0
fi

results="$work/results"
: >"$results"
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }

for th in ${threads//,/ }; do
  export OMP_NUM_THREADS="$th" OPENBLAS_NUM_THREADS="$th" MKL_NUM_THREADS="$th"
  for model in ${models//,/ }; do
    config="$("$bench" --one --model "$model" --config-only | sed -n 's/^CONFIG //p')"
    [ -n "$config" ] || { echo "compare-cpu.sh: bench_train printed no CONFIG for $model" >&2; exit 1; }
    get() { echo " $config" | field "$1"; }
    for method in ${methods//,/ }; do
      for round in $(seq 1 "$rounds"); do
        line="$("$bench" --one --model "$model" --method "$method" --batch "$batch" --seq "$seq" --rank "$rank" \
                 --warmup "$warmup" --steps "$steps" | grep '^RESULT' || true)"
        [ -n "$line" ] || { echo "compare-cpu.sh: bench_train --one failed for $model $method" >&2; exit 1; }
        echo "run_threads=$th run_model=$model run_method=$method $line" >>"$results"
        echo "  round $round  $th thread(s)  $model  $method  workbench: $(echo "$line" | field tokens_per_s) tokens/s, peak RSS $(echo "$line" | field peak_rss_mb) MB"
        [ -n "$python" ] || continue
        alpha="$(echo " $line" | field alpha)"
        pline="$("$python" "$here/peft_cpu_bench.py" --name "$model" --hidden "$(get hidden)" \
                  --intermediate "$(get intermediate)" --layers "$(get layers)" --heads "$(get heads)" \
                  --kv-heads "$(get kv_heads)" --vocab "$(get vocab)" --max-seq "$(get max_seq)" \
                  --rope-theta "$(get rope_theta)" --norm-eps "$(get norm_eps)" --tie "$(get tie)" \
                  --method "$method" --rank "$rank" --alpha "$alpha" --batch "$batch" --seq "$seq" \
                  --threads "$th" --warmup "$warmup" --steps "$steps" | grep -E '^(RESULT|SKIP)' || true)"
        case "$pline" in
          RESULT*) echo "run_threads=$th run_model=$model run_method=$method $pline" >>"$results"
                   echo "  round $round  $th thread(s)  $model  $method  pytorch:   $(echo "$pline" | field tokens_per_s) tokens/s, peak RSS $(echo "$pline" | field peak_rss_mb) MB" ;;
          *) echo "  pytorch side: ${pline:-no RESULT line}" ;;
        esac
      done
    done
  done
done

echo
echo "batch $batch x seq $seq, rank $rank on all seven projections, AdamW, $rounds alternating rounds of $warmup warm-up + $steps timed steps"
awk "$awk_median"'
  {
    for (i = 1; i <= NF; ++i) { split($i, kv, "="); f[kv[1]] = kv[2] }
    key = f["run_threads"] SUBSEP f["run_model"] SUBSEP f["run_method"]
    if (!(key in seen)) { seen[key] = 1; order[++n] = key }
    tps[key, f["side"]] = tps[key, f["side"]] " " f["tokens_per_s"]
    rss[key, f["side"]] = rss[key, f["side"]] " " f["peak_rss_mb"]
    # Each PyTorch run follows the workbench run of the same round.
    if (f["side"] == "workbench") last_wb[key] = f["tokens_per_s"]
    else if (key in last_wb) ratios[key] = ratios[key] " " last_wb[key] / f["tokens_per_s"]
  }
  END {
    printf "%-7s %-14s %-6s %26s %26s %8s %19s %12s %12s %8s\n", "threads", "model", "method", "workbench tokens/s",
           "pytorch tokens/s", "speed x", "per round", "wb RSS MB", "pt RSS MB", "RSS x"
    for (k = 1; k <= n; ++k) {
      key = order[k]; split(key, p, SUBSEP)
      wt = median(tps[key, "workbench"]); wl = lo[0]; wh = hi[0]
      wr = median(rss[key, "workbench"])
      if ((key, "pytorch") in tps) {
        pt = median(tps[key, "pytorch"]); pl = lo[0]; ph = hi[0]
        pr = median(rss[key, "pytorch"])
        rm = median(ratios[key]); rl = lo[0]; rh = hi[0]
        printf "%-7s %-14s %-6s %10.0f [%6.0f..%6.0f] %10.0f [%6.0f..%6.0f] %7.2fx %5.2fx [%4.2f..%4.2f] %12.0f %12.0f %7.2fx\n",
               p[1], p[2], p[3], wt, wl, wh, pt, pl, ph, wt / pt, rm, rl, rh, wr, pr, wr / pr
      } else {
        printf "%-7s %-14s %-6s %10.0f [%6.0f..%6.0f] %26s %8s %19s %12.0f %12s %8s\n",
               p[1], p[2], p[3], wt, wl, wh, "-", "-", "-", wr, "-", "-"
      }
    }
  }' "$results"
