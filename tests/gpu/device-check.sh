#!/usr/bin/env bash
# Runs on the GPU machine: the carried, portable gpu_check (built here by
# tests/gpu/build-device-bundle.sh into build-device/) against the CPU
# reference, op by op and on whole models. Writes into OUTDIR:
#   environment.txt  host, GPU, driver, glibc, cuBLAS used, the bundle's BUILD_INFO
#   gpu_check.log    the full run (a per-group line, then the summary table)
#   summary.txt      PASS/FAIL, the failing rows, timings
#   rerun-sync.log   only on failure: the failing groups again with LWB_CUDA_SYNC_CHECK=1
#   sanitizer.log    compute-sanitizer memcheck on the kernel groups (where it works)
#   rc               gpu_check's exit status (0 pass, 1 fail, 77 no device)
# Budget: a few minutes in all (gpu_check ~1-2 min, the sanitizer at most 150 s).
#
#   tests/gpu/device-check.sh OUTDIR        (BUNDLE=... to use another bundle folder)
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: device-check.sh OUTDIR}
bundle=${BUNDLE:-$root/build-device}
bin=$bundle/gpu_check
mkdir -p "$out"
start=$(date +%s)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}

if [ ! -x "$bin" ]; then
  echo "FAIL: $bin missing: run tests/gpu/build-device-bundle.sh and carry build-device" | tee "$out/summary.txt"
  echo 2 >"$out/rc"
  exit 2
fi

# cuBLAS: the system's when the loader finds it, else a CUDA toolkit folder,
# else the pip wheel next to PyTorch (nvidia-cublas).
if ldd "$bin" | grep -q 'libcublas.*not found'; then
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
timeout 360 "$bin" --verbose >"$out/gpu_check.log" 2>&1
rc=$?
t1=$(date +%s)
echo "$rc" >"$out/rc"

{
  case $rc in
    0) echo "PASS: gpu_check passed ($((t1 - t0)) s)" ;;
    77) grep -m1 '^SKIP' "$out/gpu_check.log" ;;
    124) echo "FAIL: gpu_check timed out after 360 s" ;;
    *) echo "FAIL: gpu_check exit status $rc ($((t1 - t0)) s)" ;;
  esac
  grep -E '^\[' "$out/gpu_check.log"          # per-group counts and times
  grep -m1 '^SUMMARY' "$out/gpu_check.log"
  echo "-- failing rows:"
  grep -E '^FAIL' "$out/gpu_check.log" | sort -u | head -60
} >"$out/summary.txt" 2>&1

# On a failure, the failing groups once more with a synchronising check after
# every launch, so an asynchronous fault is reported at the kernel that made it.
if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
  groups=$(grep -E '^\[' "$out/gpu_check.log" | awk -F'[][]' '$0 ~ /[1-9][0-9]* failed/ {gsub(/ /, "", $2); print $2}' | sort -u)
  args=""
  for g in $groups; do args="$args --op $g"; done
  if [ -z "$args" ]; then args="--verbose"; fi  # crashed before a group line: rerun all
  LWB_CUDA_SYNC_CHECK=1 timeout 120 "$bin" $args --verbose >"$out/rerun-sync.log" 2>&1
  echo "rerun with LWB_CUDA_SYNC_CHECK=1 ($args): exit $?" >>"$out/summary.txt"
fi

# Bad accesses the comparisons cannot see (reads out of bounds, shared-memory
# races): compute-sanitizer on the kernel groups, where the runtime supports it.
if [ "${SANITIZE:-1}" = 1 ] && [ "$rc" != 77 ] && command -v compute-sanitizer >/dev/null; then
  left=$((420 - ($(date +%s) - start)))
  if [ "$left" -gt 60 ]; then
    budget=$((left > 150 ? 150 : left - 30))
    timeout "$budget" compute-sanitizer --tool memcheck --leak-check no --print-limit 20 \
      "$bin" --op attention --op rmsnorm --op cross_entropy --op embedding --op argmax \
      --op sum --op variants >"$out/sanitizer.log" 2>&1
    echo "compute-sanitizer memcheck (attention, rmsnorm, cross_entropy, embedding, argmax, sum, variants): exit $? ($(grep -m1 -E 'ERROR SUMMARY' "$out/sanitizer.log" || echo 'no summary'))" >>"$out/summary.txt"
  fi
fi

echo "total: $(($(date +%s) - start)) s" >>"$out/summary.txt"
cat "$out/summary.txt"
exit "$rc"
