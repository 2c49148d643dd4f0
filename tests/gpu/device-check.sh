#!/usr/bin/env bash
# Runs on the GPU machine, within 8 minutes in all on an H200 (every step under
# `timeout`, budgeted from what is left): the carried, portable gpu_check
# (built here by tests/gpu/build-device-bundle.sh into build-device/) against
# the CPU reference, op by op and on whole models; then bench_gpu and
# peft_bench.py on the same GPT-2-small-sized LLaMA. Writes into OUTDIR:
#   environment.txt  host, GPU, driver, glibc, cuBLAS used, the bundle's BUILD_INFO
#   gpu_check.log    the full run (a per-group line, then the summary table)
#   bench_gpu.log    this engine: tokens/s, memory by category, MFU per method
#   peft_bench.log   PyTorch + PEFT, same model and rows (eager and SDPA attention)
#   summary.txt      PASS/FAIL/SKIP, the failing rows, the ours-vs-PEFT table, timings
#   rerun-sync.log   only on failure: the failing groups again with LWB_CUDA_SYNC_CHECK=1
#   sanitizer.log    compute-sanitizer memcheck on the kernel groups (with time left)
#   rc               gpu_check's exit status (0 pass, 1 fail, 77 no device)
# Exit: gpu_check's status, except 0 when it skipped for want of a device.
#
#   tests/gpu/device-check.sh OUTDIR        (BUNDLE=... to use another bundle folder)
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: device-check.sh OUTDIR}
bundle=$(cd "${BUNDLE:-$root/build-device}" 2>/dev/null && pwd) || bundle=${BUNDLE:-$root/build-device}
mkdir -p "$out"
# The bundle carries its binaries xz-compressed; unpack them into a temporary
# folder (python3's lzma where xz is missing). A plain binary is used as is.
bins=$(mktemp -d)
trap 'rm -rf "$bins"' EXIT
for name in gpu_check bench_gpu; do
  if [ -f "$bundle/$name.xz" ]; then
    # Each attempt writes the whole file afresh; an empty result counts as missing.
    xz -dc "$bundle/$name.xz" >"$bins/$name" 2>/dev/null ||
      python3 -c 'import lzma, sys; sys.stdout.buffer.write(lzma.open(sys.argv[1]).read())' "$bundle/$name.xz" \
        >"$bins/$name" || rm -f "$bins/$name"
    [ -s "$bins/$name" ] && chmod +x "$bins/$name" || rm -f "$bins/$name"
  elif [ -f "$bundle/$name" ]; then
    ln -s "$bundle/$name" "$bins/$name"
  fi
done
bin=$bins/gpu_check
start=$(date +%s)
total_budget=${BUDGET_S:-470}
# Seconds a step may take: its own budget, capped by what is left of the total.
budget() {
  local left=$((total_budget - ($(date +%s) - start)))
  echo $(($1 < left ? $1 : (left > 5 ? left : 5)))
}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}

if [ ! -x "$bin" ]; then
  echo "FAIL: $bin missing: run tests/gpu/build-device-bundle.sh and carry build-device" | tee "$out/summary.txt"
  echo 2 >"$out/rc"
  exit 2
fi

# cuBLAS: the system's when the loader finds it, else a CUDA toolkit folder,
# else the pip wheel next to PyTorch (nvidia-cublas).
if grep -q 'libcublas.*not found' <(ldd "$bin" 2>&1); then
  dirs=""
  for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -e "$d/libcublas.so.13" ] && dirs="$dirs:$d"
  done
  if [ -z "$dirs" ] && command -v python3 >/dev/null; then
    for sp in $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null); do
      for f in $(find "$sp/nvidia" -name 'libcublas.so.13*' 2>/dev/null); do
        dirs="$dirs:$(dirname "$f")"
      done
    done
  fi
  export LD_LIBRARY_PATH="${dirs#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

{
  echo "== date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "== host: $(uname -srm), $(nproc) CPUs, OMP_NUM_THREADS=$OMP_NUM_THREADS"
  echo "== glibc: $(ldd --version 2>&1 | head -1)"
  echo "== nvidia-smi:"
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>&1 | head -4
  echo "== LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
  echo "== ldd gpu_check:"
  ldd "$bin" 2>&1
  echo "== bundle BUILD_INFO:"
  cat "$bundle/BUILD_INFO" 2>/dev/null
} >"$out/environment.txt" 2>&1

# The whole check. --verbose prints every row as it completes, so a hang or a
# crash still leaves the rows before it in the log.
t0=$(date +%s)
check_budget=$(budget 240)
timeout "$check_budget" "$bin" --verbose >"$out/gpu_check.log" 2>&1
rc=$?
t1=$(date +%s)
echo "$rc" >"$out/rc"

# The benchmarks, whatever the check said (a SKIP line each without a GPU).
b0=$(date +%s)
if [ -x "$bins/bench_gpu" ]; then
  timeout "$(budget 110)" "$bins/bench_gpu" >"$out/bench_gpu.log" 2>&1
  echo "bench_gpu: exit $? ($(($(date +%s) - b0)) s)" >>"$out/bench_gpu.log"
else
  echo "FAIL: $bundle/bench_gpu missing: rebuild the bundle" >"$out/bench_gpu.log"
fi
p0=$(date +%s)
if ! command -v python3 >/dev/null; then
  echo "SKIP: peft_bench: no python3" >"$out/peft_bench.log"
else
  timeout "$(budget 120)" python3 "$bundle/peft_bench.py" >"$out/peft_bench.log" 2>&1
  echo "peft_bench: exit $? ($(($(date +%s) - p0)) s)" >>"$out/peft_bench.log"
fi

{
  case $rc in
    0) echo "PASS: gpu_check passed ($((t1 - t0)) s)" ;;
    77) grep -m1 '^SKIP' "$out/gpu_check.log" ;;
    124) echo "FAIL: gpu_check timed out after $check_budget s" ;;
    *) echo "FAIL: gpu_check exit status $rc ($((t1 - t0)) s)" ;;
  esac
  grep -E '^\[' "$out/gpu_check.log"          # per-group counts and times
  grep -m1 '^SUMMARY' "$out/gpu_check.log"
  echo "-- failing rows:"
  grep -E '^FAIL' "$out/gpu_check.log" | sort -u | head -60
  echo
  echo "-- ours (bench_gpu) vs PyTorch + PEFT (peft_bench.py), same model, batch and steps:"
  grep -h -m1 -E '^(SKIP|FAIL)' "$out/bench_gpu.log" "$out/peft_bench.log"
  grep -h -m1 -E '^bench_gpu: .*parameters' "$out/bench_gpu.log"
  # RESULT lines: key=value pairs. PEFT rows come with eager and SDPA attention.
  cat "$out/bench_gpu.log" "$out/peft_bench.log" | awk '
    /^RESULT/ {
      delete kv
      for (i = 2; i <= NF; ++i) { split($i, p, "="); kv[p[1]] = p[2] }
      if (kv["kind"] == "gemm") { gemm[kv["side"]] = sprintf("fp32 %s, tf32 %s, bf16 %s", kv["fp32_tflops"], kv["tf32_tflops"], kv["bf16_tflops"]); next }
      key = kv["method"] " " kv["precision"]
      if (kv["side"] == "ours") { if (!(key in ours)) order[++n] = key; ours[key] = kv["tokens_per_s"]; mem[key] = kv["peak_gb"]; mfu[key] = kv["mfu"] }
      else if ("error" in kv) { perr[key, kv["attn"]] = kv["error"] }
      else { ptok[key, kv["attn"]] = kv["tokens_per_s"]; pmem[key, kv["attn"]] = kv["peak_gb"]; pmfu[key, kv["attn"]] = kv["mfu"]
             if (!(key in ours) && !(key in seen)) { seen[key] = 1; porder[++m] = key } }
    }
    function cell(v, f) { return v == "" ? "-" : sprintf(f, v) }
    function ratio(a, b) { return (a == "" || b == "" || b + 0 == 0) ? "-" : sprintf("%.2fx", a / b) }
    END {
      if (n == 0 && m == 0) { print "(no benchmark rows)"; exit }
      printf "GEMM TFLOP/s: ours %s | torch %s\n", ("ours" in gemm ? gemm["ours"] : "-"), ("peft" in gemm ? gemm["peft"] : "-")
      printf "%-20s %10s %8s %6s | %10s %8s %6s | %10s %8s | %9s %9s %9s\n", "method precision", "ours tok/s", "ours GB", "MFU%", "eager tok/s", "GB", "MFU%", "sdpa tok/s", "GB", "vs eager", "vs sdpa", "mem/eager"
      for (i = 1; i <= n + m; ++i) {
        k = i <= n ? order[i] : porder[i - n]
        e = ptok[k, "eager"]; s = ptok[k, "sdpa"]
        if ((k, "eager") in perr) e = ""
        printf "%-20s %10s %8s %6s | %10s %8s %6s | %10s %8s | %9s %9s %9s\n", k,
          cell(ours[k], "%.0f"), cell(mem[k], "%.3f"), cell(mfu[k] == "" ? "" : 100 * mfu[k], "%.1f"),
          cell(e, "%.0f"), cell(pmem[k, "eager"], "%.3f"), cell(pmfu[k, "eager"] == "" ? "" : 100 * pmfu[k, "eager"], "%.1f"),
          cell(s, "%.0f"), cell(pmem[k, "sdpa"], "%.3f"),
          ratio(ours[k], e), ratio(ours[k], s), ratio(mem[k], pmem[k, "eager"])
      }
      printf "LoRA / full tokens/s (fp32): ours %s, PEFT eager %s, PEFT sdpa %s\n",
        ratio(ours["lora fp32"], ours["full fp32"]), ratio(ptok["lora fp32", "eager"], ptok["full fp32", "eager"]),
        ratio(ptok["lora fp32", "sdpa"], ptok["full fp32", "sdpa"])
      for (k in perr) { split(k, q, SUBSEP); printf "PEFT row failed: %s (%s attention): %s\n", q[1], q[2], perr[k] }
    }'
  echo "(vs eager/sdpa: ours tokens/s over PEFT's; mem/eager: our ledger peak over torch.cuda.max_memory_allocated)"
} >"$out/summary.txt" 2>&1

# On a failure, the failing groups once more with a synchronising check after
# every launch, so an asynchronous fault is reported at the kernel that made it.
if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
  groups=$(grep -E '^\[' "$out/gpu_check.log" | awk -F'[][]' '$0 ~ /[1-9][0-9]* failed/ {gsub(/ /, "", $2); print $2}' | sort -u)
  args=""
  for g in $groups; do args="$args --op $g"; done
  if [ -z "$args" ]; then args="--verbose"; fi  # crashed before a group line: rerun all
  LWB_CUDA_SYNC_CHECK=1 timeout "$(budget 120)" "$bin" $args --verbose >"$out/rerun-sync.log" 2>&1
  echo "rerun with LWB_CUDA_SYNC_CHECK=1 ($args): exit $?" >>"$out/summary.txt"
fi

# Bad accesses the comparisons cannot see (reads out of bounds, shared-memory
# races): compute-sanitizer on the kernel groups, where the runtime supports it.
if [ "${SANITIZE:-1}" = 1 ] && [ "$rc" != 77 ] && command -v compute-sanitizer >/dev/null; then
  left=$((total_budget - ($(date +%s) - start)))
  if [ "$left" -gt 60 ]; then
    budget=$((left > 150 ? 150 : left - 10))
    timeout "$budget" compute-sanitizer --tool memcheck --leak-check no --print-limit 20 \
      "$bin" --op attention --op rmsnorm --op cross_entropy --op embedding --op argmax \
      --op sum --op variants --op generate >"$out/sanitizer.log" 2>&1
    echo "compute-sanitizer memcheck (attention incl. attention_cached, rmsnorm, cross_entropy, embedding, argmax, sum, variants, generate): exit $? ($(grep -m1 -E 'ERROR SUMMARY' "$out/sanitizer.log" || echo 'no summary'))" >>"$out/summary.txt"
  fi
fi

echo "total: $(($(date +%s) - start)) s (budget $total_budget s)" >>"$out/summary.txt"
cat "$out/summary.txt"
[ "$rc" = 77 ] && exit 0
exit "$rc"
