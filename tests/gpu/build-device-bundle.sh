#!/usr/bin/env bash
# Builds gpu_check for the GPU machine into a small folder that travels there
# (default: build-device/ at the repository root, ignored by git; carry it).
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
cmake --build "$build" --target gpu_check -j "$jobs"

mkdir -p "$bundle"
rm -f "$bundle/gpu_check"
cp "$build/tests/gpu/gpu_check" "$bundle/gpu_check"
strip "$bundle/gpu_check"

# The binary itself may only need glibc's libraries, the loader and cuBLAS
# (cuBLAS in turn needs libcublasLt and libgcc_s, both beside it there).
ldd "$bundle/gpu_check" >"$bundle/ldd.txt" 2>&1 || true
readelf -d "$bundle/gpu_check" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' >"$bundle/needed.txt"
bad=$(grep -vE '^(lib(c|m|dl|rt|pthread)\.so\.[0-9]+|ld-linux-x86-64\.so\.2|libcublas\.so\.[0-9]+)$' "$bundle/needed.txt" || true)
if [ -n "$bad" ]; then
  echo "unexpected dynamic dependencies of gpu_check:" >&2
  echo "$bad" >&2
  exit 1
fi
{
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n)"
  echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')"
  echo "nvcc: $(nvcc --version | tail -1)"
  echo "glibc needed: $(objdump -T "$bundle/gpu_check" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)"
  echo "size: $(du -h "$bundle/gpu_check" | cut -f1)"
} >"$bundle/BUILD_INFO"
cat "$bundle/BUILD_INFO"
echo "NEEDED: $(tr '\n' ' ' <"$bundle/needed.txt")"
cat "$bundle/ldd.txt"
