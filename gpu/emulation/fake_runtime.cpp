// The CUDA runtime and cuBLAS entry points the CUDA backend calls, done on the
// CPU for the emulated build (gpu_emu, tests/gpu's gpu_check_emu): "device"
// memory is host memory, streams are no-ops, cublasGemmEx is OpenBLAS (bf16
// operands widened to fp32), and kernels run through the emulator of
// cuda_emu.h (the scheduler is here).

// clang-format off
#include "gpu/emulation/cuda_emu.h"  // first: it defines __shared__ before the CUDA headers do
// clang-format on

#include <cblas.h>
#include <cublas_v2.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

struct cublasContext {
  int math_mode = 0;
};

namespace lwb::emu {

namespace {

constexpr std::size_t kStackBytes = 256 * 1024;

enum class State { Ready, WaitBlock, WaitWarp, Done };

struct Thread {
  ucontext_t ctx;
  char* stack = nullptr;
  State state = State::Ready;
  uint3 idx{};
};

struct Emulator {
  ucontext_t scheduler;
  std::vector<Thread> threads;
  std::vector<char*> stacks;
  Thread* current = nullptr;
  int current_index = 0;
  bool direct = false;  // running a thread as a plain call (no context)
  bool synced = false;  // the probe thread reached a barrier
  const std::function<void()>* body = nullptr;
  std::vector<std::uint64_t> slots;  // 32 per warp
  std::vector<unsigned char> dyn_smem;
  std::mt19937 rng{12345};
  unsigned long long launches = 0;

  ~Emulator() {
    for (char* s : stacks) munmap(s, kStackBytes);
  }
  char* stack(std::size_t i) {
    while (stacks.size() <= i) {
      void* p =
          mmap(nullptr, kStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) throw std::runtime_error("emulator: cannot map a thread stack");
      stacks.push_back(static_cast<char*>(p));
    }
    return stacks[i];
  }
};

Emulator& emu() {
  static Emulator e;
  return e;
}

[[noreturn]] void fatal(const std::string& what) {
  std::fprintf(stderr, "CUDA emulator: %s (block %u,%u,%u thread %u,%u,%u)\n", what.c_str(),
               blockIdx.x, blockIdx.y, blockIdx.z, threadIdx.x, threadIdx.y, threadIdx.z);
  std::abort();
}

unsigned linear(const uint3& t) { return t.x + t.y * blockDim.x + t.z * blockDim.x * blockDim.y; }

void entry() {
  Emulator& e = emu();
  (*e.body)();
  e.current->state = State::Done;
  // returning resumes uc_link (the scheduler)
}

void wait(State s) {
  Emulator& e = emu();
  if (e.direct) fatal("a barrier in a thread run without a context (divergent barrier?)");
  e.synced = true;
  e.current->state = s;
  Thread* self = e.current;
  swapcontext(&self->ctx, &e.scheduler);
  threadIdx = self->idx;  // restored by the scheduler too; keep it exact
}

void start(Thread& t, std::size_t i) {
  Emulator& e = emu();
  getcontext(&t.ctx);
  t.stack = e.stack(i);
  t.ctx.uc_stack.ss_sp = t.stack;
  t.ctx.uc_stack.ss_size = kStackBytes;
  t.ctx.uc_link = &e.scheduler;
  makecontext(&t.ctx, entry, 0);
  t.state = State::Ready;
}

void run_block(const std::function<void()>& body) {
  Emulator& e = emu();
  const unsigned n = blockDim.x * blockDim.y * blockDim.z;
  if (n == 0 || n > 1024) fatal("block of " + std::to_string(n) + " threads");
  e.body = &body;
  e.threads.resize(n);
  e.slots.assign(static_cast<std::size_t>((n + 31) / 32) * 32, 0);
  for (unsigned i = 0; i < n; ++i) {
    Thread& t = e.threads[i];
    t.idx = uint3{i % blockDim.x, (i / blockDim.x) % blockDim.y, i / (blockDim.x * blockDim.y)};
  }
  // Probe: thread 0 in a context. If it finishes without a barrier, the
  // kernel has none on this block's path: run the others as plain calls.
  e.synced = false;
  start(e.threads[0], 0);
  e.current = &e.threads[0];
  threadIdx = e.threads[0].idx;
  swapcontext(&e.scheduler, &e.threads[0].ctx);
  if (!e.synced && e.threads[0].state == State::Done) {
    e.direct = true;
    for (unsigned i = 1; i < n; ++i) {
      e.current = &e.threads[i];
      threadIdx = e.threads[i].idx;
      body();
    }
    e.direct = false;
    return;
  }
  for (unsigned i = 1; i < n; ++i) start(e.threads[i], i);
  std::vector<unsigned> order(n);
  for (unsigned i = 0; i < n; ++i) order[i] = i;
  for (;;) {
    std::shuffle(order.begin(), order.end(), e.rng);
    for (unsigned i : order) {
      Thread& t = e.threads[i];
      if (t.state != State::Ready) continue;
      e.current = &t;
      threadIdx = t.idx;
      swapcontext(&e.scheduler, &t.ctx);
    }
    // Nobody is ready: release what can be released.
    bool any_live = false, released = false;
    const unsigned warps = (n + 31) / 32;
    for (unsigned w = 0; w < warps; ++w) {
      bool live = false, all_warp = true;
      for (unsigned i = w * 32; i < std::min(n, (w + 1) * 32); ++i) {
        const State s = e.threads[i].state;
        if (s == State::Done) continue;
        live = true;
        if (s != State::WaitWarp) all_warp = false;
      }
      any_live = any_live || live;
      if (live && all_warp) {
        for (unsigned i = w * 32; i < std::min(n, (w + 1) * 32); ++i)
          if (e.threads[i].state == State::WaitWarp) e.threads[i].state = State::Ready;
        released = true;
      }
    }
    if (!any_live) break;
    if (released) continue;
    bool all_block = true;
    for (const Thread& t : e.threads)
      if (t.state != State::Done && t.state != State::WaitBlock) all_block = false;
    if (!all_block) fatal("deadlock: threads wait at different barriers");
    for (Thread& t : e.threads)
      if (t.state == State::WaitBlock) t.state = State::Ready;
  }
}

}  // namespace

void* dynamic_shared() { return emu().dyn_smem.empty() ? nullptr : emu().dyn_smem.data(); }

void run_grid(dim3 grid, dim3 block, std::size_t smem, const std::function<void()>& body) {
  Emulator& e = emu();
  ++e.launches;
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) fatal("empty grid (invalid configuration)");
  if (grid.y > 65535 || grid.z > 65535) fatal("grid y/z above 65535");
  if (smem > 227 * 1024) fatal("dynamic shared memory above 227 KiB");
  // NaN floats: reads of unwritten shared memory show. A canary tail catches
  // writes past the dynamic shared memory the launch asked for.
  constexpr std::size_t kCanary = 1024;
  e.dyn_smem.assign(smem, 0xFF);
  if (smem) e.dyn_smem.insert(e.dyn_smem.end(), kCanary, 0xA7);
  gridDim = grid;
  blockDim = block;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        blockIdx = uint3{x, y, z};
        run_block(body);
        for (std::size_t i = smem; i < e.dyn_smem.size(); ++i)
          if (e.dyn_smem[i] != 0xA7) fatal("write past the launch's dynamic shared memory");
      }
}

void sync_block() { wait(State::WaitBlock); }
void sync_warp() { wait(State::WaitWarp); }

std::uint64_t* warp_slots() { return emu().slots.data() + (linear(threadIdx) / 32) * 32; }
unsigned lane_id() { return linear(threadIdx) % 32; }

}  // namespace lwb::emu

// ---- CUDA runtime ---------------------------------------------------------------------

namespace {
struct FakeStream {};
FakeStream g_stream;
std::size_t g_live = 0;
}  // namespace

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : cudaErrorInvalidDevice; }
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int) {
  std::memset(prop, 0, sizeof *prop);
  std::strcpy(prop->name, "CPU emulation");
  prop->major = 9;
  prop->minor = 0;
  prop->totalGlobalMem = std::size_t{16} << 30;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int) {
  *value = attr == cudaDevAttrComputeCapabilityMajor ? 9 : 0;
  return cudaSuccess;
}
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, const void*) {
  std::memset(attr, 0, sizeof *attr);
  return cudaSuccess;
}
cudaError_t cudaFuncSetAttribute(const void*, cudaFuncAttribute, int value) {
  return value <= 227 * 1024 ? cudaSuccess : cudaErrorInvalidValue;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  *s = reinterpret_cast<cudaStream_t>(&g_stream);
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaMalloc(void** p, std::size_t bytes) {
  *p = std::malloc(bytes);
  if (!*p) return cudaErrorMemoryAllocation;
  std::memset(*p, 0xCD, bytes);  // garbage, as fresh device memory
  g_live += bytes;
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMallocHost(void** p, std::size_t bytes) { return cudaMalloc(p, bytes); }
cudaError_t cudaFreeHost(void* p) { return cudaFree(p); }
cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind,
                            cudaStream_t) {
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int value, std::size_t bytes, cudaStream_t) {
  std::memset(p, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemGetInfo(std::size_t* free_b, std::size_t* total_b) {
  *total_b = std::size_t{16} << 30;
  *free_b = *total_b > g_live ? *total_b - g_live : 0;
  return cudaSuccess;
}
cudaError_t cudaGetLastError() { return cudaSuccess; }
const char* cudaGetErrorName(cudaError_t e) {
  return e == cudaErrorMemoryAllocation ? "cudaErrorMemoryAllocation" : "cudaError (emulated)";
}
const char* cudaGetErrorString(cudaError_t e) {
  return e == cudaErrorMemoryAllocation ? "out of memory" : "emulated CUDA error";
}

// ---- cuBLAS -------------------------------------------------------------------------------

cublasStatus_t cublasCreate_v2(cublasHandle_t* h) {
  *h = new cublasContext;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t h) {
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream_v2(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode) {
  h->math_mode = static_cast<int>(mode);
  return CUBLAS_STATUS_SUCCESS;
}
const char* cublasGetStatusName(cublasStatus_t) { return "CUBLAS_STATUS_(emulated)"; }
const char* cublasGetStatusString(cublasStatus_t) { return "emulated cuBLAS error"; }

namespace {
// A column-major operand as fp32 (bf16 widened), spanning what op/ld address.
const float* as_f32(const void* p, cudaDataType type, cublasOperation_t op, int rows, int cols,
                    int ld, std::vector<float>& tmp) {
  if (type == CUDA_R_32F) return static_cast<const float*>(p);
  // stored dims: op == N: rows x cols; op == T: cols x rows
  const int srows = op == CUBLAS_OP_N ? rows : cols, scols = op == CUBLAS_OP_N ? cols : rows;
  const std::size_t span = scols == 0 ? 0 : static_cast<std::size_t>(ld) * (scols - 1) + srows;
  tmp.resize(span);
  const auto* b = static_cast<const std::uint16_t*>(p);
  for (std::size_t i = 0; i < span; ++i) {
    const std::uint32_t u = static_cast<std::uint32_t>(b[i]) << 16;
    std::memcpy(&tmp[i], &u, 4);
  }
  return tmp.data();
}
}  // namespace

cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t transa, cublasOperation_t transb,
                            int m, int n, int k, const void* alpha, const void* A,
                            cudaDataType Atype, int lda, const void* B, cudaDataType Btype, int ldb,
                            const void* beta, void* C, cudaDataType Ctype, int ldc,
                            cublasComputeType_t, cublasGemmAlgo_t) {
  if (Ctype != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
  if ((Atype == CUDA_R_16BF) != (Btype == CUDA_R_16BF)) return CUBLAS_STATUS_NOT_SUPPORTED;
  // cuBLAS's argument checks (column-major).
  if (m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
  if (lda < std::max(1, transa == CUBLAS_OP_N ? m : k)) return CUBLAS_STATUS_INVALID_VALUE;
  if (ldb < std::max(1, transb == CUBLAS_OP_N ? k : n)) return CUBLAS_STATUS_INVALID_VALUE;
  if (ldc < std::max(1, m)) return CUBLAS_STATUS_INVALID_VALUE;
  std::vector<float> ta, tb;
  const float* a = as_f32(A, Atype, transa, m, k, lda, ta);
  const float* b = as_f32(B, Btype, transb, k, n, ldb, tb);
  cblas_sgemm(CblasColMajor, transa == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
              transb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k,
              *static_cast<const float*>(alpha), a, lda, b, ldb, *static_cast<const float*>(beta),
              static_cast<float*>(C), ldc);
  return CUBLAS_STATUS_SUCCESS;
}
