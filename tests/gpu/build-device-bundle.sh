#!/usr/bin/env bash
# Builds gpu_check and bench_gpu for the GPU machine into a small folder that
# travels there with tests/bench/peft_bench.py (default: build-device/ at the
# repository root, ignored by git; carry it). tests/gpu/device-check.sh runs
# all three there.
#
# That machine has the NVIDIA driver, the CUDA libraries (cuBLAS) and glibc, but
# no Qt, no OpenBLAS and not this machine's compiler runtime, and another CPU.
# So: -march=x86-64-v3 instead of native; OpenBLAS, libgfortran, libquadmath,
# libgomp, libstdc++ and libgcc linked statically; CUDA runtime static; only
# glibc and cuBLAS stay dynamic (checked below with ldd).
#
#   tests/gpu/build-device-bundle.sh [BUNDLE_DIR]
# The CMake build tree goes to build-device-cmake/ (not carried).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bundle=${1:-$root/build-device}
build=${LWB_DEVICE_BUILD_DIR:-$root/build-device-cmake}
jobs=${JOBS:-$(nproc)}

openblas=/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.a
gomp=$(gcc -print-file-name=libgomp.a)
[ -f "$openblas" ] || { echo "missing $openblas (libopenblas-openmp-dev)" >&2; exit 1; }
[ -f "$gomp" ] || { echo "missing libgomp.a" >&2; exit 1; }
command -v nvcc >/dev/null || export PATH=/usr/local/cuda/bin:$PATH

mkdir -p "$build"
cmake -S "$root" -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release \
  -DLWB_WITH_GUI=OFF -DLWB_NATIVE=OFF \
  -DCMAKE_CXX_FLAGS="-march=x86-64-v3" \
  -DCMAKE_CUDA_FLAGS="-Xcompiler=-march=x86-64-v3" \
  -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DOPENBLAS_LIBRARY="$openblas" \
  -DOpenMP_gomp_LIBRARY="$gomp" \
  -DLWB_GPU_CHECK_PORTABLE=ON >"$build/configure.log" 2>&1 ||
  { tail -30 "$build/configure.log"; exit 1; }
cmake --build "$build" --target gpu_check bench_gpu -j "$jobs"

mkdir -p "$bundle"
rm -f "$bundle"/gpu_check* "$bundle"/bench_gpu* "$bundle/peft_bench.py"
cp "$build/tests/gpu/gpu_check" "$bundle/gpu_check"
cp "$build/tests/bench/bench_gpu" "$bundle/bench_gpu"
strip "$bundle/gpu_check" "$bundle/bench_gpu"
cp "$root/tests/bench/peft_bench.py" "$bundle/peft_bench.py"

# The binaries themselves may only need glibc's libraries, the loader and
# cuBLAS (cuBLAS in turn needs libcublasLt and libgcc_s, both beside it there).
: >"$bundle/ldd.txt"
: >"$bundle/needed.txt"
for bin in gpu_check bench_gpu; do
  { echo "== $bin"; ldd "$bundle/$bin" 2>&1; } >>"$bundle/ldd.txt" || true
  needed=$(readelf -d "$bundle/$bin" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p')
  echo "$needed" | sed "s/^/$bin: /" >>"$bundle/needed.txt"
  bad=$(echo "$needed" | grep -vE '^(lib(c|m|dl|rt|pthread)\.so\.[0-9]+|ld-linux-x86-64\.so\.2|libcublas\.so\.[0-9]+)$' || true)
  if [ -n "$bad" ]; then
    echo "unexpected dynamic dependencies of $bin:" >&2
    echo "$bad" >&2
    exit 1
  fi
done
glibc=$(objdump -T "$bundle/gpu_check" "$bundle/bench_gpu" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
# The bundle travels with the working tree (64 MiB for all carried paths):
# the binaries go xz-compressed (about 12x: static OpenBLAS is most of them);
# device-check.sh unpacks them there.
xz -T0 -6 -f "$bundle/gpu_check" "$bundle/bench_gpu"
size_kib=$(du -sk "$bundle" | cut -f1)
if [ "$size_kib" -gt $((60 * 1024)) ]; then
  echo "the bundle is $((size_kib / 1024)) MiB, over the 60 MiB it may take" >&2
  exit 1
fi
{
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n)"
  echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')"
  echo "nvcc: $(nvcc --version | tail -1)"
  echo "glibc needed: $glibc"
  echo "size: gpu_check.xz $(du -h "$bundle/gpu_check.xz" | cut -f1), bench_gpu.xz $(du -h "$bundle/bench_gpu.xz" | cut -f1), bundle $(du -sh "$bundle" | cut -f1)"
} >"$bundle/BUILD_INFO"
cat "$bundle/BUILD_INFO"
cat "$bundle/needed.txt"
cat "$bundle/ldd.txt"
