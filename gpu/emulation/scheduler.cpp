// The kernel side of the CUDA emulation (see cuda_emu.h): launch checks, the
// block and thread scheduler, shared memory and warp operations.

// clang-format off
#include "gpu/emulation/cuda_emu.h"  // first: it defines __shared__ before the CUDA headers do
// clang-format on

#include <sys/mman.h>
#include <ucontext.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/common/str_printf.h"
#include "gpu/emulation/emulator.h"

namespace lwb::emu {

namespace {

constexpr std::size_t kStackBytes = 256 * 1024;
constexpr std::size_t kDefaultDynamicShared = 48 * 1024;  // without cudaFuncSetAttribute
constexpr std::size_t kStaticSharedLimit = 48 * 1024;
constexpr std::size_t kSharedPerBlock = 227 * 1024;  // static + dynamic, sm_90
constexpr std::size_t kCanaryBytes = 64;             // behind every shared array
constexpr unsigned char kPoison = 0xFF;              // NaN as float and as double
constexpr unsigned char kCanary = 0xA7;
constexpr int kRegistersPerBlock = 65536;
constexpr int kRegisterUnit = 8;  // a thread's registers are allocated in eights (256 per warp)

const KernelRegisters kBuiltInRegisters[] = {
#include "kernel_registers.inc"  // generated from gpu/*.cu by kernel_registers.cmake
};

enum class State { NotStarted, Ready, WaitBlock, WaitWarp, Done };

struct Thread {
  ucontext_t ctx;
  State state = State::NotStarted;
  uint3 idx{};
  unsigned mask = 0;         // at a warp operation: its mask
  const char* op = nullptr;  // and which operation
};

struct SharedArray {
  std::size_t offset, bytes;
};

struct Emulator {
  std::uint64_t seed = 0;
  std::mt19937_64 rng;
  bool seeded = false;

  // The launch and block being run.
  const char* kernel = "";
  const std::function<void()>* body = nullptr;
  std::vector<Thread> threads;
  std::vector<char*> stacks;
  std::vector<unsigned> first, order;  // thread indices: the first pass, the scheduler's rounds
  std::vector<std::uint64_t> blocks;   // linear block indices, shuffled per launch
  Thread* current = nullptr;
  Thread* main = nullptr;  // the thread running on the scheduler's own stack
  bool contexts = false;   // the block's unfinished threads have contexts
  ucontext_t scheduler;
  std::vector<std::uint64_t> slots;  // 32 per warp

  // Shared memory of the block being run.
  std::vector<unsigned char> dynamic;  // the launch's bytes + canary
  std::size_t dynamic_bytes = 0;
  std::vector<unsigned char> statics = std::vector<unsigned char>(2 * kStaticSharedLimit);
  std::vector<SharedArray> static_arrays;
  std::size_t static_end = 0, static_bytes = 0;
  unsigned long long block_serial = 0;

  // What the driver knows of each kernel.
  std::unordered_map<const void*, std::size_t> max_dynamic_shared;  // cudaFuncSetAttribute
  std::unordered_map<std::string, int> registers;                   // ptxas

  Emulator() { add(kBuiltInRegisters, std::size(kBuiltInRegisters)); }
  ~Emulator() {
    for (char* s : stacks) munmap(s, kStackBytes);
  }
  void add(const KernelRegisters* table, std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
      int& r = registers[table[i].name];
      r = std::max(r, table[i].registers);
    }
  }
  char* stack(std::size_t i) {
    while (stacks.size() <= i) {
      void* p =
          mmap(nullptr, kStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) fatal("cannot map an emulated thread's stack");
      stacks.push_back(static_cast<char*>(p));
    }
    return stacks[i];
  }
};

Emulator& emu() {
  static Emulator e;
  return e;
}

// The first use picks the seed of every shuffle and says how to repeat it.
void seed() {
  Emulator& e = emu();
  if (e.seeded) return;
  const char* env = std::getenv("LWB_EMU_SEED");
  if (env && *env) {
    e.seed = std::strtoull(env, nullptr, 10);
  } else {
    std::random_device rd;
    e.seed = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }
  e.rng.seed(e.seed);
  e.seeded = true;
  std::fprintf(stderr,
               "CUDA emulator: schedule seed %llu (LWB_EMU_SEED=%llu repeats this order of "
               "blocks, threads and streams)\n",
               static_cast<unsigned long long>(e.seed), static_cast<unsigned long long>(e.seed));
}

[[noreturn]] void fault_at(const uint3& thread, const std::string& what) {
  const Emulator& e = emu();
  fatal(str_printf("kernel %s, block (%u,%u,%u), thread (%u,%u,%u): ", e.kernel, blockIdx.x,
                   blockIdx.y, blockIdx.z, thread.x, thread.y, thread.z) +
        what + str_printf(" [schedule seed %llu]", static_cast<unsigned long long>(e.seed)));
}

unsigned linear(const uint3& t) { return t.x + t.y * blockDim.x + t.z * blockDim.x * blockDim.y; }

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

void entry() {
  Emulator& e = emu();
  (*e.body)();
  e.current->state = State::Done;
  // returning resumes uc_link: the scheduler
}

// Every thread not yet started becomes a context, ready to run from the start.
void start_contexts() {
  Emulator& e = emu();
  for (std::size_t i = 0; i < e.threads.size(); ++i) {
    Thread& t = e.threads[i];
    if (t.state != State::NotStarted) continue;
    getcontext(&t.ctx);
    t.ctx.uc_stack.ss_sp = e.stack(i);
    t.ctx.uc_stack.ss_size = kStackBytes;
    t.ctx.uc_link = &e.scheduler;
    makecontext(&t.ctx, entry, 0);
    t.state = State::Ready;
  }
  e.contexts = true;
}

// Releases the warps and the block barrier whose threads have all arrived.
bool release() {
  Emulator& e = emu();
  bool released = false;
  for (std::size_t i = 0; i < e.threads.size(); ++i) {
    const Thread& t = e.threads[i];
    if (t.state != State::WaitWarp) continue;
    const std::size_t warp = i / 32 * 32;
    bool all = true;
    for (unsigned lane = 0; lane < 32; ++lane) {
      if (!(t.mask >> lane & 1u)) continue;
      const Thread& u = e.threads[warp + lane];  // exists: checked at the warp operation
      if (u.state == State::Done)
        fault_at(t.idx, str_printf("%s with mask 0x%08x waits for lane %u, which has exited", t.op,
                                   t.mask, lane));
      if (u.state == State::WaitWarp && (u.mask != t.mask || std::strcmp(u.op, t.op) != 0))
        fault_at(t.idx, str_printf("%s with mask 0x%08x meets lane %u at %s with mask 0x%08x", t.op,
                                   t.mask, lane, u.op, u.mask));
      all = all && u.state == State::WaitWarp;
    }
    if (!all) continue;
    for (unsigned lane = 0; lane < 32; ++lane)
      if (t.mask >> lane & 1u) e.threads[warp + lane].state = State::Ready;
    released = true;
  }
  if (released) return true;
  bool waiting = false;
  for (const Thread& t : e.threads) {
    if (t.state == State::Done) continue;
    if (t.state != State::WaitBlock) return false;
    waiting = true;
  }
  for (Thread& t : e.threads)
    if (t.state == State::WaitBlock) t.state = State::Ready;
  return waiting;
}

[[noreturn]] void deadlock() {
  const Emulator& e = emu();
  int block = 0, warp = 0, done = 0;
  const Thread* example = nullptr;
  for (const Thread& t : e.threads) {
    block += t.state == State::WaitBlock;
    warp += t.state == State::WaitWarp;
    done += t.state == State::Done;
    if (t.state == State::WaitWarp && !example) example = &t;
  }
  fault_at(
      example ? example->idx : e.threads.front().idx,
      str_printf("deadlock: %d threads wait at __syncthreads, %d at warp operations (%s), %d have "
                 "exited (a barrier in divergent code?)",
                 block, warp, example ? example->op : "none", done));
}

// Runs the ready context threads, in a new shuffled order each round, and
// releases barriers, until `main` (waiting on this stack) is released or, with
// no main, until every thread is done.
void schedule(Thread* main) {
  Emulator& e = emu();
  for (;;) {
    if (main && main->state == State::Ready) return;
    std::shuffle(e.order.begin(), e.order.end(), e.rng);
    for (unsigned i : e.order) {
      Thread& t = e.threads[i];
      if (&t == main || t.state != State::Ready) continue;
      e.current = &t;
      threadIdx = t.idx;
      swapcontext(&e.scheduler, &t.ctx);
    }
    if (release()) continue;
    if (!main) {
      bool all_done = true;
      for (const Thread& t : e.threads) all_done = all_done && t.state == State::Done;
      if (all_done) return;
    }
    deadlock();
  }
}

void wait(State s, unsigned mask, const char* op) {
  Emulator& e = emu();
  Thread* self = e.current;
  self->state = s;
  self->mask = mask;
  self->op = op;
  if (self == e.main) {
    if (!e.contexts) start_contexts();
    schedule(self);
    e.current = self;
    threadIdx = self->idx;
  } else {
    swapcontext(&self->ctx, &e.scheduler);
  }
}

void check_canary(const unsigned char* p, const char* what) {
  for (std::size_t i = 0; i < kCanaryBytes; ++i)
    if (p[i] != kCanary) fault_at(threadIdx, str_printf("a write past the end of %s", what));
}

// One block: threads run as plain calls in a shuffled order until one reaches
// a barrier; that one waits on this stack (main) while the rest run as contexts.
void run_block(const std::function<void()>& body) {
  Emulator& e = emu();
  ++e.block_serial;
  e.static_arrays.clear();
  e.static_end = e.static_bytes = 0;
  std::memset(e.dynamic.data(), kPoison, e.dynamic_bytes);
  for (Thread& t : e.threads) t.state = State::NotStarted;
  e.body = &body;
  e.contexts = false;
  std::shuffle(e.first.begin(), e.first.end(), e.rng);
  for (unsigned i : e.first) {
    if (e.contexts) break;
    Thread& t = e.threads[i];
    e.main = e.current = &t;
    threadIdx = t.idx;
    t.state = State::Ready;
    body();
    t.state = State::Done;
  }
  e.main = nullptr;
  if (e.contexts) schedule(nullptr);
  if (e.dynamic_bytes) check_canary(e.dynamic.data() + e.dynamic_bytes, "dynamic shared memory");
  for (const SharedArray& a : e.static_arrays)
    check_canary(e.statics.data() + a.offset + a.bytes, "a static shared array");
  if (e.static_bytes + e.dynamic_bytes > kSharedPerBlock)
    fault_at(threadIdx,
             str_printf("%zu bytes of static and %zu of dynamic shared memory: above %zu",
                        e.static_bytes, e.dynamic_bytes, kSharedPerBlock));
}

void run_grid(const LaunchConfig& c, const std::function<void()>& body) {
  Emulator& e = emu();
  e.kernel = c.name;
  gridDim = c.grid;
  blockDim = c.block;
  const unsigned n = c.block.x * c.block.y * c.block.z;
  e.threads.resize(n);
  e.first.resize(n);
  e.order.resize(n);
  for (unsigned i = 0; i < n; ++i) {
    e.threads[i].idx =
        uint3{i % c.block.x, (i / c.block.x) % c.block.y, i / (c.block.x * c.block.y)};
    e.first[i] = e.order[i] = i;
  }
  e.slots.assign(round_up(n, 32), 0);
  e.dynamic_bytes = c.smem;
  e.dynamic.assign(c.smem + kCanaryBytes, kCanary);
  const std::uint64_t count = static_cast<std::uint64_t>(c.grid.x) * c.grid.y * c.grid.z;
  e.blocks.resize(count);
  for (std::uint64_t b = 0; b < count; ++b) e.blocks[b] = b;
  std::shuffle(e.blocks.begin(), e.blocks.end(), e.rng);
  for (const std::uint64_t b : e.blocks) {
    blockIdx =
        uint3{static_cast<unsigned>(b % c.grid.x), static_cast<unsigned>(b / c.grid.x % c.grid.y),
              static_cast<unsigned>(b / c.grid.x / c.grid.y)};
    run_block(body);
  }
}

std::string base_name(const char* kernel) {
  const std::string s = kernel;
  return s.substr(0, s.find('<'));
}

}  // namespace

bool launch_kernel(const LaunchConfig& c, std::function<void()> body) {
  Emulator& e = emu();
  seed();
  const auto refuse = [&](cudaError_t err, const std::string& why) {
    fail(err, std::string(c.name) + ": " + why);
    return false;
  };
  const int device = current_device();
  if (stream_device(c.stream) != device)
    return refuse(cudaErrorInvalidResourceHandle,
                  str_printf("its stream belongs to cuda:%d, cuda:%d is current",
                             stream_device(c.stream), device));
  if (!has_kernel_image(device))
    return refuse(cudaErrorNoKernelImageForDevice,
                  str_printf("no kernel image for cuda:%d", device));
  const dim3 g = c.grid, b = c.block;
  if (!g.x || !g.y || !g.z || g.x > 2147483647u || g.y > 65535 || g.z > 65535)
    return refuse(cudaErrorInvalidConfiguration, str_printf("grid (%u, %u, %u)", g.x, g.y, g.z));
  const unsigned threads = b.x * b.y * b.z;
  if (!threads || b.x > 1024 || b.y > 1024 || b.z > 64 || threads > 1024)
    return refuse(cudaErrorInvalidConfiguration, str_printf("block (%u, %u, %u)", b.x, b.y, b.z));
  const auto attr = e.max_dynamic_shared.find(c.kernel);
  const std::size_t allowed =
      attr == e.max_dynamic_shared.end() ? kDefaultDynamicShared : attr->second;
  if (c.smem > allowed)
    return refuse(cudaErrorInvalidValue,
                  attr == e.max_dynamic_shared.end()
                      ? str_printf("%zu bytes of dynamic shared memory, above 48 KiB without "
                                   "cudaFuncSetAttribute(kernel, "
                                   "cudaFuncAttributeMaxDynamicSharedMemorySize, %zu) first",
                                   c.smem, c.smem)
                      : str_printf("%zu bytes of dynamic shared memory, above the %zu its "
                                   "cudaFuncSetAttribute allows",
                                   c.smem, allowed));
  const auto regs = e.registers.find(base_name(c.name));
  if (regs == e.registers.end())
    return refuse(cudaErrorInvalidDeviceFunction,
                  "not in the emulator's table of ptxas register counts (gpu/*.cu are; a program "
                  "with kernels of its own adds theirs with add_kernel_registers)");
  const int per_thread =
      static_cast<int>(round_up(static_cast<std::size_t>(regs->second), kRegisterUnit));
  const int needed = per_thread * 32 * static_cast<int>((threads + 31) / 32);
  if (needed > kRegistersPerBlock)
    return refuse(
        cudaErrorLaunchOutOfResources,
        str_printf("%d registers per thread (ptxas) x %u threads need %d registers, above the "
                   "%d of a block: give the kernel __launch_bounds__(%u) or launch fewer threads",
                   regs->second, threads, needed, kRegistersPerBlock, threads));
  enqueue(c.stream, [c, body = std::move(body)] { run_grid(c, body); });
  return true;
}

void check_kernel_pointer(const LaunchConfig& c, int index, const void* p) {
  if (!p || memory_kind(p) == Memory::Pinned) return;  // pinned memory is mapped for the device
  const std::string why = check_device_range(p, 0, "");
  if (!why.empty())
    fatal(str_printf("kernel %s, argument %d: %p is ", c.name, index, p) + describe(p) +
          ": a kernel can reach only device memory");
}

std::mt19937_64& schedule_rng() {
  seed();
  return emu().rng;
}

void add_kernel_registers(const KernelRegisters* table, std::size_t count) {
  emu().add(table, count);
}

void* dynamic_shared() { return emu().dynamic_bytes ? emu().dynamic.data() : nullptr; }

void* static_shared(SharedSite& site, std::size_t bytes, std::size_t align) {
  Emulator& e = emu();
  if (site.block != e.block_serial) {
    const std::size_t off = round_up(e.static_end, std::max<std::size_t>(align, 16));
    e.static_bytes += bytes;
    if (e.static_bytes > kStaticSharedLimit || off + bytes + kCanaryBytes > e.statics.size())
      fault_at(threadIdx, str_printf("static shared memory above %zu bytes", kStaticSharedLimit));
    std::memset(e.statics.data() + off, kPoison, bytes);
    std::memset(e.statics.data() + off + bytes, kCanary, kCanaryBytes);
    e.static_arrays.push_back({off, bytes});
    e.static_end = off + bytes + kCanaryBytes;
    site.block = e.block_serial;
    site.offset = off;
  }
  return e.statics.data() + site.offset;
}

void sync_block() { wait(State::WaitBlock, 0, "__syncthreads"); }

void sync_warp(unsigned mask, const char* op) {
  const Emulator& e = emu();
  const unsigned self = linear(threadIdx), warp = self / 32 * 32;
  const unsigned lanes = std::min<unsigned>(32, static_cast<unsigned>(e.threads.size()) - warp);
  if (!(mask >> (self - warp) & 1u))
    fault_at(threadIdx, str_printf("%s with mask 0x%08x, which leaves out the calling lane %u", op,
                                   mask, self - warp));
  if (lanes < 32 && mask >> lanes)
    fault_at(threadIdx,
             str_printf("%s with mask 0x%08x names lanes %u..31, which do not exist: the block "
                        "has %zu threads, not a multiple of 32",
                        op, mask, lanes, e.threads.size()));
  for (unsigned lane = 0; lane < lanes; ++lane)
    if (mask >> lane & 1u && e.threads[warp + lane].state == State::Done)
      fault_at(threadIdx,
               str_printf("%s with mask 0x%08x names lane %u, which has exited", op, mask, lane));
  wait(State::WaitWarp, mask, op);
}

std::uint64_t* warp_slots() { return emu().slots.data() + linear(threadIdx) / 32 * 32; }
unsigned lane_id() { return linear(threadIdx) % 32; }
void kernel_fault(const char* what) { fault_at(threadIdx, what); }

}  // namespace lwb::emu

// ---- the runtime's view of kernels ------------------------------------------------------

cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  using namespace lwb::emu;
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaSuccess;
  if (value < 0 || static_cast<std::size_t>(value) > kSharedPerBlock)
    return fail(
        cudaErrorInvalidValue,
        lwb::str_printf("cudaFuncSetAttribute: %d bytes of dynamic shared memory, above %zu", value,
                        kSharedPerBlock));
  emu().max_dynamic_shared[func] = static_cast<std::size_t>(value);
  return cudaSuccess;
}

cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, const void* func) {
  using namespace lwb::emu;
  std::memset(attr, 0, sizeof *attr);
  if (!has_kernel_image(current_device()))
    return fail(
        cudaErrorNoKernelImageForDevice,
        lwb::str_printf("cudaFuncGetAttributes: no kernel image for cuda:%d", current_device()));
  const auto it = emu().max_dynamic_shared.find(func);
  attr->maxThreadsPerBlock = 1024;
  attr->maxDynamicSharedSizeBytes =
      static_cast<int>(it == emu().max_dynamic_shared.end() ? kDefaultDynamicShared : it->second);
  return cudaSuccess;
}
