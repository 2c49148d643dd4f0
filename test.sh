#!/usr/bin/env bash
# Quick start 2: install what is missing, build everything (Release) and run
# every test through CTest. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")"
./install-deps.sh
jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs"
export QT_QPA_PLATFORM=offscreen
ctest --test-dir build --output-on-failure -j "$jobs" "$@"
