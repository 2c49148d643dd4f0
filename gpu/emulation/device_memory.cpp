// Emulated device memory: allocations carved from one reserved address range
// that stays PROT_NONE while the host runs, so a host read or write of device
// memory faults, and the SIGSEGV handler names the allocation it hit (size,
// offset, where it was made) and the access. Emulated device work (kernels,
// copies, memsets, cuBLAS) opens the range for its duration (DeviceWork).
// Pinned host memory is separate (its own pages) and always accessible.
//
// One host thread drives the emulation (as the kernels' built-in variables
// are globals), so there is no locking.
#include <execinfo.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <map>
#include <string>

#include "gpu/emulation/emulator.h"

namespace lwb::emu {

namespace {

constexpr std::size_t kRegionBytes = std::size_t{64} << 30;  // all devices together
constexpr std::size_t kAlign = 256;                          // as cudaMalloc
constexpr std::size_t kReleaseBytes = std::size_t{1}
                                      << 20;  // freed blocks this large go back to the OS
constexpr int kFrames = 10;

struct Allocation {
  std::size_t bytes = 0;  // as asked for; device blocks take round_up(bytes, kAlign)
  int device = 0;
  unsigned serial = 0;
  void* frames[kFrames];
  int nframes = 0;
};

struct Region {
  char* base = nullptr;
  std::size_t top = 0;                       // offsets at or above are free
  std::size_t high = 0;                      // the highest top so far: what DeviceWork opens
  std::map<std::size_t, Allocation> live;    // by offset
  std::map<std::size_t, std::size_t> holes;  // free offset -> bytes, below top, coalesced
  std::map<std::uintptr_t, Allocation> pinned;
  std::map<int, std::size_t> in_use;
  unsigned serial = 0;
  int work_depth = 0;
  struct sigaction previous {};
};

Region& mem() {
  static Region m;
  return m;
}

std::size_t page_size() {
  static const std::size_t p = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return p;
}
std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

void say(const char* s) {
  for (std::size_t n = std::strlen(s); n > 0;) {
    const ssize_t w = write(STDERR_FILENO, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<std::size_t>(w);
  }
}

// The allocation of `by_start` whose range holds `at` (its end counts: an
// empty range may sit there).
template <class Map>
const typename Map::value_type* containing(const Map& by_start, typename Map::key_type at) {
  auto it = by_start.upper_bound(at);
  if (it == by_start.begin()) return nullptr;
  --it;
  return at <= it->first + it->second.bytes ? &*it : nullptr;
}

const std::pair<const std::size_t, Allocation>* holding(std::size_t off) {
  return containing(mem().live, off);
}

const std::pair<const std::uintptr_t, Allocation>* pinned_holding(std::uintptr_t p) {
  return containing(mem().pinned, p);
}

bool in_region(std::uintptr_t p) {
  const auto b = reinterpret_cast<std::uintptr_t>(mem().base);
  return mem().base && p >= b && p < b + kRegionBytes;
}

// Async-signal-safe enough for a process about to abort: no allocation.
void on_segv(int sig, siginfo_t* info, void* context) {
  Region& m = mem();
  const auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
  if (!in_region(addr)) {  // not ours: let the previous disposition see the fault again
    sigaction(SIGSEGV, &m.previous, nullptr);
    return;
  }
  // Inside device work the region is open: a fault there is a kernel or copy
  // going past every allocation ever made.
  const char* who = m.work_depth ? "device work (a kernel, copy or cuBLAS call)" : "host";
  const char* access = "access";
#if defined(__x86_64__)
  access = static_cast<ucontext_t*>(context)->uc_mcontext.gregs[REG_ERR] & 2 ? "write" : "read";
#endif
  const std::size_t off = addr - reinterpret_cast<std::uintptr_t>(m.base);
  char line[512];
  const auto* a = holding(off);
  if (a && off < a->first + a->second.bytes) {
    std::snprintf(line, sizeof line,
                  "CUDA emulator: %s %s of device memory at %p: offset %zu of device allocation "
                  "#%u (%zu bytes on cuda:%d). The host reaches device memory only through "
                  "cudaMemcpy*; Tensor::data<T>() is for CPU tensors.\n",
                  who, access, info->si_addr, off - a->first, a->second.serial, a->second.bytes,
                  a->second.device);
  } else {
    std::snprintf(line, sizeof line,
                  "CUDA emulator: %s %s of device memory at %p, outside every live device "
                  "allocation (freed, or never allocated).\n",
                  who, access, info->si_addr);
  }
  say(line);
  // Frames without the emulator's own: device_alloc; the handler and the signal trampoline.
  if (a) {
    std::snprintf(line, sizeof line, "device allocation #%u was made at:\n", a->second.serial);
    say(line);
    backtrace_symbols_fd(a->second.frames + 1, a->second.nframes - 1, STDERR_FILENO);
  }
  say("the access:\n");
  void* frames[kFrames + 2];
  const int n = backtrace(frames, kFrames + 2);
  backtrace_symbols_fd(frames + 2, n - 2, STDERR_FILENO);
  signal(SIGABRT, SIG_DFL);
  abort();
}

void reserve() {
  Region& m = mem();
  if (m.base) return;
  void* p =
      mmap(nullptr, kRegionBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) fatal("cannot reserve the emulated device address range");
  m.base = static_cast<char*>(p);
  void* warm[1];
  backtrace(warm, 1);  // loads the unwinder now, not first inside the signal handler
  struct sigaction sa {};
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &m.previous);
}

void protect(int prot) {
  Region& m = mem();
  if (m.high && mprotect(m.base, round_up(m.high, page_size()), prot) != 0)
    fatal("mprotect of the emulated device memory failed");
}

__attribute__((always_inline)) inline Allocation record(std::size_t bytes, int device) {
  Allocation a;
  a.bytes = bytes;
  a.device = device;
  a.serial = ++mem().serial;
  a.nframes = backtrace(a.frames, kFrames);
  return a;
}

}  // namespace

DeviceWork::DeviceWork() {
  if (mem().work_depth++ == 0) protect(PROT_READ | PROT_WRITE);
}
DeviceWork::~DeviceWork() {
  if (--mem().work_depth == 0) protect(PROT_NONE);
}

void* device_alloc(std::size_t bytes, int device) {
  reserve();
  Region& m = mem();
  const std::size_t size = round_up(bytes, kAlign);  // bytes > 0
  if (bytes > kDeviceBytes || m.in_use[device] + size > kDeviceBytes) return nullptr;
  std::size_t off = m.top;
  auto hole = m.holes.begin();
  while (hole != m.holes.end() && hole->second < size) ++hole;  // first fit
  if (hole != m.holes.end()) {
    off = hole->first;
    if (hole->second > size) m.holes[off + size] = hole->second - size;
    m.holes.erase(hole);
  } else {
    if (m.top + size > kRegionBytes) return nullptr;
    m.top += size;
    m.high = std::max(m.high, m.top);
  }
  m.live[off] = record(bytes, device);
  m.in_use[device] += size;
  return m.base + off;
}

bool device_free(void* p) {
  Region& m = mem();
  if (!in_region(reinterpret_cast<std::uintptr_t>(p))) return false;
  const std::size_t off = static_cast<std::size_t>(static_cast<char*>(p) - m.base);
  const auto it = m.live.find(off);
  if (it == m.live.end()) return false;
  std::size_t start = off, size = round_up(it->second.bytes, kAlign);
  m.in_use[it->second.device] -= size;
  m.live.erase(it);
  const auto next = m.holes.find(start + size);
  if (next != m.holes.end()) {
    size += next->second;
    m.holes.erase(next);
  }
  auto prev = m.holes.lower_bound(start);
  if (prev != m.holes.begin() && std::prev(prev)->first + std::prev(prev)->second == start) {
    --prev;
    start = prev->first;
    size += prev->second;
    m.holes.erase(prev);
  }
  if (start + size == m.top) {
    m.top = start;
  } else {
    m.holes[start] = size;
  }
  // Whole pages of a large free block go back to the OS: the resident part of
  // the range is what each mprotect has to walk.
  if (size >= kReleaseBytes) {
    const std::size_t a = round_up(start, page_size()),
                      b = (start + size) / page_size() * page_size();
    if (b > a) madvise(m.base + a, b - a, MADV_DONTNEED);
  }
  return true;
}

void* pinned_alloc(std::size_t bytes) {
  reserve();
  void* p = mmap(nullptr, round_up(bytes ? bytes : 1, page_size()), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  mem().pinned[reinterpret_cast<std::uintptr_t>(p)] = record(bytes, -1);
  return p;
}

bool pinned_free(void* p) {
  Region& m = mem();
  const auto it = m.pinned.find(reinterpret_cast<std::uintptr_t>(p));
  if (it == m.pinned.end()) return false;
  munmap(p, round_up(it->second.bytes ? it->second.bytes : 1, page_size()));
  m.pinned.erase(it);
  return true;
}

Memory memory_kind(const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  if (in_region(a)) return Memory::Device;
  return pinned_holding(a) ? Memory::Pinned : Memory::Pageable;
}

std::size_t device_bytes_in_use(int device) { return mem().in_use[device]; }

std::string describe(const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  char buf[160];
  switch (memory_kind(p)) {
    case Memory::Device: {
      const auto* h = holding(a - reinterpret_cast<std::uintptr_t>(mem().base));
      if (!h) return "device memory outside every live allocation (freed, or never allocated)";
      std::snprintf(buf, sizeof buf, "device allocation #%u (%zu bytes on cuda:%d, offset %zu)",
                    h->second.serial, h->second.bytes, h->second.device,
                    a - reinterpret_cast<std::uintptr_t>(mem().base) - h->first);
      return buf;
    }
    case Memory::Pinned: {
      const auto* h = pinned_holding(a);
      std::snprintf(buf, sizeof buf, "pinned host allocation #%u (%zu bytes, offset %zu)",
                    h->second.serial, h->second.bytes, a - h->first);
      return buf;
    }
    case Memory::Pageable: break;
  }
  return "pageable host memory";
}

std::string check_device_range(const void* p, std::size_t bytes, const char* what) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%s (%p, %zu bytes) ", what, p, bytes);
  if (memory_kind(p) != Memory::Device) return buf + std::string("is ") + describe(p);
  const std::size_t off = a - reinterpret_cast<std::uintptr_t>(mem().base);
  const auto* h = holding(off);
  if (!h) return buf + std::string("is ") + describe(p);
  const std::size_t end = h->first + h->second.bytes;
  if (off + bytes <= end) return "";
  return buf + std::string("runs ") + std::to_string(off + bytes - end) +
         " bytes past the end of " + describe(p);
}

}  // namespace lwb::emu
