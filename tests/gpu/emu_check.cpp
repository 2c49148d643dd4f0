// emu_check: the CUDA emulation's own tests (gpu/emulation). Qt-free, run
// by CTest in every CUDA-enabled build (tests/gpu/CMakeLists.txt).
//
//   emu_check trap NAME   runs the mistake NAME in a child process and passes
//                         when the child fails with the message it must give
//   emu_check semantics   what correct code sees: deferred streams, staged and
//                         poisoned copies, events, a big launch with its attribute
//   emu_check devices     device choice with LWB_EMU_DEVICES=2 and
//                         LWB_EMU_NO_KERNEL_IMAGE=0 (cuda:1 usable, cuda:0 not)
//   emu_check --list      the traps
//
// Exit: 0 passed, 1 failed, 2 bad usage.

// clang-format off
#include "gpu/emulation/cuda_emu.h"  // first: it defines __shared__ before the CUDA headers do
// clang-format on

#include <cublas_v2.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/common/errors.h"
#include "core/common/str_printf.h"
#include "core/backend/backend_registry.h"
#include "gpu/cuda_backend.h"
#include "gpu/cuda_check.h"
#include "tests/gpu/emu_kernels.h"

using namespace lwb;

namespace {

const emu::KernelRegisters kRegisters[] = {
#include "emu_kernel_registers.inc"  // ptxas's counts for emu_kernels.cu
};

void expect(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error(what);
}

std::uint32_t bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// The traps end their process, so what they allocate is never freed.
template <class T>
T* device(std::size_t n) {
  void* p = nullptr;
  LWB_CUDA_CHECK(cudaMalloc(&p, n * sizeof(T)));
  return static_cast<T*>(p);
}

template <class T>
T* pinned(std::size_t n) {
  void* p = nullptr;
  LWB_CUDA_CHECK(cudaMallocHost(&p, n * sizeof(T)));
  return static_cast<T*>(p);
}

cudaStream_t stream() {
  cudaStream_t s = nullptr;
  LWB_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return s;
}

template <class T>
std::vector<T> download(const T* d, std::size_t n, cudaStream_t s) {
  std::vector<T> v(n);
  LWB_CUDA_CHECK(cudaMemcpyAsync(v.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost, s));
  return v;
}

// A kernel result in which a block read shared memory none of its threads wrote.
void expect_no_poison(const std::vector<float>& out) {
  for (std::size_t i = 0; i < out.size(); ++i)
    expect(!std::isnan(out[i]),
           str_printf("block %zu read shared memory that no thread of it wrote: NaN "
                      "(the emulator's poison)",
                      i / 32));
}

// ---- traps: each a mistake, and what the emulation must say about it ----------------------

struct Trap {
  const char* name;
  const char* message;  // the child's output must contain it
  std::function<void()> run;
};

cublasHandle_t cublas() {
  cublasHandle_t h = nullptr;
  LWB_CUBLAS_CHECK(cublasCreate(&h));
  LWB_CUBLAS_CHECK(cublasSetStream(h, stream()));
  return h;
}

const float kOne = 1.0f, kZero = 0.0f;

// Row-major C[M,N] = A[M,K] B[K,N] with cuBLAS, forgetting that cuBLAS is
// column-major (the backend swaps the operands: gemm.cpp).
void row_major_gemm_unswapped() {
  const int M = 65, N = 17, K = 33;
  float *A = device<float>(M * K), *B = device<float>(K * N), *C = device<float>(M * N);
  LWB_CUBLAS_CHECK(cublasGemmEx(cublas(), CUBLAS_OP_N, CUBLAS_OP_N, M, N, K, &kOne, A, CUDA_R_32F,
                                K, B, CUDA_R_32F, N, &kZero, C, CUDA_R_32F, N, CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT));
}

// A[M,K] row-major read as its transpose with a leading dimension that passes
// the argument check but runs past the allocation.
void gemm_past_the_end() {
  const int M = 64, K = 32;
  float *A = device<float>(M * K), *B = device<float>(K * M), *C = device<float>(M * M);
  LWB_CUBLAS_CHECK(cublasGemmEx(cublas(), CUBLAS_OP_T, CUBLAS_OP_N, M, M, K, &kOne, A, CUDA_R_32F,
                                M, B, CUDA_R_32F, K, &kZero, C, CUDA_R_32F, M, CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT));
}

const std::vector<Trap>& traps() {
  static const std::vector<Trap> t = {
      {"host_read", "host read of device memory at",
       [] {
         auto be = make_cuda_backend(0);
         const Tensor t = make_tensor(*be, Shape{64}, DType::F32);
         const volatile float* p = static_cast<const float*>(t.raw());
         std::printf("the host read %g\n", p[3]);
       }},
      {"host_data", "Tensor::data<T>() on a cuda:0 tensor",
       [] {
         auto be = make_cuda_backend(0);
         const Tensor t = make_tensor(*be, Shape{64}, DType::F32);
         std::printf("the host read %g\n", t.data<float>()[3]);
       }},
      {"read_before_sync", "before cudaStreamSynchronize saw 0xffffffff",
       [] {
         cudaStream_t s = stream();
         float* d = device<float>(1);
         float* h = pinned<float>(1);
         LWB_CUDA_CHECK(cudaMemsetAsync(d, 0x3f, sizeof(float), s));
         LWB_CUDA_CHECK(cudaMemcpyAsync(h, d, sizeof(float), cudaMemcpyDeviceToHost, s));
         const float early = *h;
         LWB_CUDA_CHECK(cudaStreamSynchronize(s));
         expect(bits(early) == bits(*h),
                str_printf(
                    "a host read before cudaStreamSynchronize saw 0x%08x, after it %g: the copy "
                    "had not run",
                    bits(early), *h));
       }},
      {"block_order", "depends on the order of its blocks",
       [] {
         cudaStream_t s = stream();
         int* d = device<int>(64);
         emucheck::chain(s, d, 64);
         const std::vector<int> out = download(d, 64, s);
         for (int b = 0; b < 64; ++b)
           expect(out[b] == b,
                  str_printf("out[%d] = %d, expected %d: the kernel depends on the order of "
                             "its blocks",
                             b, out[b], b));
       }},
      {"shared_static", "that no thread of it wrote",
       [] {
         cudaStream_t s = stream();
         float* d = device<float>(8 * 32);
         emucheck::shared_static(s, d, 8);
         expect_no_poison(download(d, 8 * 32, s));
       }},
      {"shared_dynamic", "that no thread of it wrote",
       [] {
         cudaStream_t s = stream();
         float* d = device<float>(8 * 32);
         emucheck::shared_dynamic(s, d, 8);
         expect_no_poison(download(d, 8 * 32, s));
       }},
      {"warp_exited_lane", "which has exited",
       [] {
         cudaStream_t s = stream();
         float* d = device<float>(64);
         emucheck::warp_after_exit(s, d);
         download(d, 64, s);
       }},
      {"warp_partial_block", "not a multiple of 32",
       [] {
         cudaStream_t s = stream();
         float* d = device<float>(48);
         emucheck::warp_sum(s, d, 48);
         download(d, 48, s);
       }},
      {"smem_without_attribute", "above 48 KiB without cudaFuncSetAttribute",
       [] {
         cudaStream_t s = stream();
         float* d = device<float>(128);
         emucheck::big_shared(s, d, 64 * 1024, false);
       }},
      {"copy_overlap", "the source and the destination overlap",
       [] {
         cudaStream_t s = stream();
         char* d = device<char>(1024);
         LWB_CUDA_CHECK(cudaMemcpyAsync(d + 16, d, 512, cudaMemcpyDeviceToDevice, s));
       }},
      {"copy_direction", "the source is device allocation",
       [] {
         cudaStream_t s = stream();
         float* d = device<float>(16);
         std::vector<float> h(16);
         LWB_CUDA_CHECK(cudaMemcpyAsync(h.data(), d, 64, cudaMemcpyHostToDevice, s));
       }},
      {"gemm_transposed", "lda 33 < m 65", row_major_gemm_unswapped},
      {"gemm_past_the_end", "past the end of device allocation", gemm_past_the_end},
      {"kernel_host_pointer", "a kernel can reach only device memory",
       [] {
         cudaStream_t s = stream();
         std::vector<int> h(4);
         emucheck::chain(s, h.data(), 4);
       }},
      {"registers", "registers per thread (ptxas) x 1024 threads",
       [] {
         cudaStream_t s = stream();
         float* in = device<float>(96);
         float* out = device<float>(1024);
         emucheck::register_heavy(s, out, in, 1024);
       }},
  };
  return t;
}

// Runs the trap in a child, whose output (stdout and stderr) comes back here.
int run_trap(const Trap& trap) {
  int fds[2];
  if (pipe(fds) != 0) return 1;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    try {
      trap.run();
      std::printf("the mistake ran to the end without an error\n");
      std::fflush(stdout);
      _exit(0);
    } catch (const std::exception& e) {
      std::printf("%s\n", e.what());
      std::fflush(stdout);
      _exit(1);
    }
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  const bool failed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const bool said = out.find(trap.message) != std::string::npos;
  std::printf("---- %s: the child's output ----\n%s---- %s: %s\n", trap.name, out.c_str(),
              trap.name,
              failed && said ? "caught, with the expected message"
              : failed       ? "failed, but without the expected message"
                             : "NOT CAUGHT");
  if (!said) std::printf("expected the message: %s\n", trap.message);
  return failed && said ? 0 : 1;
}

// ---- what correct code sees -------------------------------------------------------------------

struct Check {
  const char* name;
  std::function<void()> run;  // throws on failure
};

int run_checks(const std::vector<Check>& checks) {
  int failed = 0;
  for (const Check& c : checks) {
    try {
      c.run();
      std::printf("ok   %s\n", c.name);
    } catch (const std::exception& e) {
      std::printf("FAIL %s: %s\n", c.name, e.what());
      ++failed;
    }
  }
  std::printf("%s\n", failed ? "FAIL" : "PASS");
  return failed ? 1 : 0;
}

std::vector<Check> semantics() {
  return {
      {"a launch above 48 KiB with its cudaFuncSetAttribute runs",
       [] {
         cudaStream_t s = stream();
         float* d = device<float>(128);
         emucheck::big_shared(s, d, 64 * 1024, true);
         const std::vector<float> out = download(d, 128, s);
         for (float x : out) expect(x == 127.0f * 128.0f / 2.0f, str_printf("got %g", x));
       }},
      {"a register-heavy kernel runs with 256 threads",
       [] {
         cudaStream_t s = stream();
         std::vector<float> zero(96, 0.0f);
         float* in = device<float>(96);
         float* out = device<float>(256);
         LWB_CUDA_CHECK(
             cudaMemcpyAsync(in, zero.data(), 96 * sizeof(float), cudaMemcpyHostToDevice, s));
         emucheck::register_heavy(s, out, in, 256);
         for (float x : download(out, 256, s)) expect(std::isfinite(x), "not finite");
       }},
      {"a full-mask warp sum over whole warps",
       [] {
         cudaStream_t s = stream();
         float* d = device<float>(64);
         emucheck::warp_sum(s, d, 64);
         for (float x : download(d, 64, s)) expect(x == 32.0f, str_printf("got %g", x));
       }},
      {"a pageable source is staged when the copy is queued",
       [] {
         cudaStream_t s = stream();
         float* d = device<float>(1);
         float h = 1.0f;
         LWB_CUDA_CHECK(cudaMemcpyAsync(d, &h, 4, cudaMemcpyHostToDevice, s));
         h = 2.0f;
         expect(download(d, 1, s)[0] == 1.0f, "the copy saw the later value");
       }},
      {"a pinned source is read when the copy runs",
       [] {
         cudaStream_t s = stream();
         float* d = device<float>(1);
         float* h = pinned<float>(1);
         *h = 1.0f;
         LWB_CUDA_CHECK(cudaMemcpyAsync(d, h, 4, cudaMemcpyHostToDevice, s));
         *h = 2.0f;  // a race on a GPU; here the copy, run later, takes it
         expect(download(d, 1, s)[0] == 2.0f, "the copy ran when it was queued");
       }},
      {"a copy into pinned memory is poison until synchronised",
       [] {
         cudaStream_t s = stream();
         float* d = device<float>(1);
         float* h = pinned<float>(1);
         LWB_CUDA_CHECK(cudaMemsetAsync(d, 0, 4, s));
         LWB_CUDA_CHECK(cudaMemcpyAsync(h, d, 4, cudaMemcpyDeviceToHost, s));
         expect(bits(*h) == 0xffffffffu, str_printf("before: 0x%08x", bits(*h)));
         LWB_CUDA_CHECK(cudaStreamSynchronize(s));
         expect(*h == 0.0f, str_printf("after: %g", *h));
       }},
      {"a copy into pageable memory is done when it returns",
       [] {
         cudaStream_t s = stream();
         float* d = device<float>(1);
         LWB_CUDA_CHECK(cudaMemsetAsync(d, 0, 4, s));
         expect(download(d, 1, s)[0] == 0.0f, "not copied");
       }},
      {"an event synchronises its stream up to the event, no further",
       [] {
         cudaStream_t s = stream();
         cudaEvent_t e = nullptr;
         LWB_CUDA_CHECK(cudaEventCreate(&e));
         float* d = device<float>(1);
         float* h = pinned<float>(1);
         LWB_CUDA_CHECK(cudaMemsetAsync(d, 0, 4, s));
         LWB_CUDA_CHECK(cudaEventRecord(e, s));
         LWB_CUDA_CHECK(cudaMemcpyAsync(h, d, 4, cudaMemcpyDeviceToHost, s));
         LWB_CUDA_CHECK(cudaEventSynchronize(e));
         expect(bits(*h) == 0xffffffffu, "the copy after the event ran");
         LWB_CUDA_CHECK(cudaStreamSynchronize(s));
         expect(*h == 0.0f, str_printf("after the stream: %g", *h));
         LWB_CUDA_CHECK(cudaEventDestroy(e));
       }},
      {"cudaStreamWaitEvent orders two streams",
       [] {
         cudaStream_t a = stream(), b = stream();
         cudaEvent_t e = nullptr;
         LWB_CUDA_CHECK(cudaEventCreate(&e));
         float* d = device<float>(1);
         LWB_CUDA_CHECK(cudaMemsetAsync(d, 0, 4, a));
         LWB_CUDA_CHECK(cudaEventRecord(e, a));
         LWB_CUDA_CHECK(cudaStreamWaitEvent(b, e, 0));
         expect(download(d, 1, b)[0] == 0.0f, "b read before a's memset");
         LWB_CUDA_CHECK(cudaEventDestroy(e));
       }},
      {"a blocking cudaMemcpy does not wait for a non-blocking stream",
       [] {
         cudaStream_t s = stream();
         float* d = device<float>(1);
         LWB_CUDA_CHECK(cudaMemsetAsync(d, 0, 4, s));
         float h = 1.0f;
         LWB_CUDA_CHECK(cudaMemcpy(&h, d, 4, cudaMemcpyDeviceToHost));
         expect(bits(h) == 0xcdcdcdcdu, str_printf("saw 0x%08x, not fresh memory", bits(h)));
         LWB_CUDA_CHECK(cudaStreamSynchronize(s));
       }},
  };
}

// LWB_EMU_DEVICES=2 LWB_EMU_NO_KERNEL_IMAGE=0: probe_cuda used to return the
// count of usable devices, which make_backend took for a range of ordinals.
std::vector<Check> devices() {
  register_gpu_provider(cuda_gpu_provider());
  const auto throws = [](const std::string& device, const std::string& must_contain) {
    try {
      make_backend(device);
    } catch (const ConfigError& e) {
      expect(std::string(e.what()).find(must_contain) != std::string::npos,
             std::string("message: ") + e.what());
      return;
    }
    throw std::runtime_error(device + " was accepted");
  };
  return {
      {"probe_cuda: cuda:1 usable, cuda:0 not, with the reason",
       [] {
         const CudaProbe p = probe_cuda();
         expect(p.devices == std::vector<int>{1},
                str_printf("%zu usable devices", p.devices.size()));
         expect(p.reason.find("cuda:0") != std::string::npos &&
                    p.reason.find("no kernel image") != std::string::npos,
                "reason: " + p.reason);
       }},
      {"auto and cuda pick cuda:1",
       [] {
         std::string note;
         expect(make_backend("auto", &note)->device().index == 1, "auto is not cuda:1");
         expect(note.empty(), "auto fell back: " + note);
         expect(make_backend("cuda")->device().index == 1, "cuda is not cuda:1");
       }},
      {"cuda:1 is accepted and runs kernels",
       [] {
         auto be = make_backend("cuda:1");
         expect(be->device().index == 1, "not cuda:1");
         const Tensor t = make_tensor(*be, Shape{300}, DType::F32);
         be->fill(t, 2.5);
         std::vector<float> v(300);
         be->download(v.data(), t, v.size() * sizeof(float));
         for (float x : v) expect(x == 2.5f, str_printf("got %g", x));
       }},
      {"cuda:0 is refused with its reason", [throws] { throws("cuda:0", "no kernel image"); }},
      {"cuda:2 is refused", [throws] { throws("cuda:2", "not a usable device"); }},
      {"a launch on cuda:0 fails as on the hardware",
       [] {
         LWB_CUDA_CHECK(cudaSetDevice(0));
         cudaStream_t s = stream();
         float* d = device<float>(32);
         try {
           emucheck::warp_sum(s, d, 32);
         } catch (const DeviceError& e) {
           expect(
               std::string(e.what()).find("cudaErrorNoKernelImageForDevice") != std::string::npos,
               e.what());
           return;
         }
         throw std::runtime_error("the launch was accepted");
       }},
  };
}

int usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s trap NAME | semantics | devices | --list\n", argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  emu::add_kernel_registers(kRegisters, std::size(kRegisters));
  const std::string what = argc > 1 ? argv[1] : "";
  if (what == "--list") {
    for (const Trap& t : traps()) std::printf("%s\n", t.name);
    return 0;
  }
  if (what == "trap" && argc == 3) {
    for (const Trap& t : traps())
      if (t.name == std::string(argv[2])) return run_trap(t);
    std::fprintf(stderr, "emu_check: no trap %s (--list)\n", argv[2]);
    return 2;
  }
  if (what == "semantics") return run_checks(semantics());
  if (what == "devices") return run_checks(devices());
  return usage(argv[0]);
}
