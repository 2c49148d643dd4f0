#!/usr/bin/env bash
# Builds the libFuzzer target with clang in its own build folder and runs it
# for a short while over the seed corpus. Registered with CTest from the
# normal (gcc) build; exits 77 (skipped) when clang is not installed.
set -euo pipefail
src=$1 build=$2 seconds=${3:-20} target=${4:-safetensors}
command -v clang++ >/dev/null || { echo "SKIP: clang++ not installed (Debian: clang libclang-rt-14-dev)"; exit 77; }
cmake -S "$src" -B "$build" -G Ninja -DLWB_FUZZ=ON -DLWB_WITH_CUDA=OFF -DLWB_WITH_GUI=OFF \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target "fuzz_$target" >/dev/null
work="$build/tests/fuzz/corpus-$target"
mkdir -p "$work"
"$build/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 \
  -dict="$src/tests/fuzz/$target.dict" "$work" "$src/tests/fuzz/corpus/$target" 2>&1 | tail -3
