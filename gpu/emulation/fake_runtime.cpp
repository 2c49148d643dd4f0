// The CUDA runtime entry points the CUDA backend calls, done on the CPU for
// the emulated build (gpu_emu, tests/gpu's gpu_check_emu): devices, errors,
// memory and streams. Kernels: scheduler.cpp; device memory: device_memory.cpp;
// cuBLAS: fake_cublas.cpp.
//
// Streams defer, as on a GPU: a launch, copy, memset or cuBLAS call queues a
// closure on its stream and returns; queued work runs only at a
// synchronisation that covers it (the stream's, an event's, the device's,
// cudaStreamWaitEvent, cudaMalloc, cudaFree, cudaFreeHost; a blocking copy
// covers the default stream and the blocking streams, as on a GPU).
// So host code that reads a result before its synchronisation reads what
// was there before: the destination of a pending copy into pinned memory is
// filled with NaN bytes when the copy is queued. Copies follow the runtime's
// rules for host memory: a pageable source is staged (snapshot) when queued, a
// pinned source is read when the copy runs, a copy into pageable memory
// returns only once done. (A pinned buffer that is the source of a queued copy
// and then the destination of another reads as poison in the first: reusing a
// staging buffer before a synchronisation is flagged, though the hardware
// would order it.)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "gpu/emulation/emulator.h"

struct CUstream_st {
  int device = 0;
  bool blocking = true;  // synchronises with the legacy default stream
  struct Work {
    std::uint64_t seq;
    std::function<void()> run;
  };
  std::deque<Work> queue;
  std::uint64_t queued = 0;  // the sequence number of the last work queued
};

struct CUevent_st {
  CUstream_st* stream = nullptr;
  std::uint64_t seq = 0;  // done once the stream has run this far
};

namespace lwb::emu {

namespace {

constexpr unsigned char kPoison = 0xFF;   // NaN as float and double
constexpr unsigned char kGarbage = 0xCD;  // fresh device memory

struct Devices {
  int count = 1;
  std::vector<bool> image;
};

const Devices& devices() {
  static const Devices d = [] {
    Devices d;
    if (const char* n = std::getenv("LWB_EMU_DEVICES"); n && *n) {
      d.count = std::atoi(n);
      if (d.count < 0 || d.count > 16) fatal("LWB_EMU_DEVICES must be 0..16");
    }
    d.image.assign(static_cast<std::size_t>(d.count), true);
    if (const char* list = std::getenv("LWB_EMU_NO_KERNEL_IMAGE")) {
      for (const char* p = list; *p;) {
        char* end = nullptr;
        const long dev = std::strtol(p, &end, 10);
        if (end == p || dev < 0 || dev >= d.count)
          fatal("LWB_EMU_NO_KERNEL_IMAGE: expected device ordinals below LWB_EMU_DEVICES, got \"" +
                std::string(list) + "\"");
        d.image[static_cast<std::size_t>(dev)] = false;
        p = *end == ',' ? end + 1 : end;
      }
    }
    return d;
  }();
  return d;
}

struct Runtime {
  int current = 0;
  cudaError_t last = cudaSuccess;
  cudaError_t detail_code = cudaSuccess;
  std::string detail, shown;
  CUstream_st legacy;                 // the default stream (handle 0)
  std::vector<CUstream_st*> streams;  // created ones
};

Runtime& rt() {
  static Runtime r;
  return r;
}

CUstream_st* stream(cudaStream_t s) {
  if (s) return s;
  rt().legacy.device = rt().current;
  return &rt().legacy;
}

bool live(const CUstream_st* s) {
  const auto& all = rt().streams;
  return s == &rt().legacy || std::find(all.begin(), all.end(), s) != all.end();
}

// Runs s's queued work up to sequence number `upto`.
void run(CUstream_st* s, std::uint64_t upto) {
  if (s->queue.empty() || s->queue.front().seq > upto) return;
  DeviceWork open;
  while (!s->queue.empty() && s->queue.front().seq <= upto) {
    const CUstream_st::Work w = std::move(s->queue.front());
    s->queue.pop_front();
    w.run();
  }
}

void drain(CUstream_st* s) { run(s, s->queued); }

// Every stream of `device` (all devices when -1), in a shuffled order: work
// on different streams is unordered unless events order it.
void drain_streams(int device, bool blocking_only) {
  std::vector<CUstream_st*> all = rt().streams;
  std::shuffle(all.begin(), all.end(), schedule_rng());
  for (CUstream_st* s : all)
    if ((device < 0 || s->device == device) && (s->blocking || !blocking_only)) drain(s);
  drain(&rt().legacy);
}

const char* error_name(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidDeviceFunction: return "cudaErrorInvalidDeviceFunction";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorNoKernelImageForDevice: return "cudaErrorNoKernelImageForDevice";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    default: return "cudaError (emulated)";
  }
}

const char* error_text(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorNoKernelImageForDevice:
      return "no kernel image is available for execution on the device";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    default: return "emulated CUDA error";
  }
}

const char* kind_name(cudaMemcpyKind k) {
  switch (k) {
    case cudaMemcpyHostToHost: return "cudaMemcpyHostToHost";
    case cudaMemcpyHostToDevice: return "cudaMemcpyHostToDevice";
    case cudaMemcpyDeviceToHost: return "cudaMemcpyDeviceToHost";
    case cudaMemcpyDeviceToDevice: return "cudaMemcpyDeviceToDevice";
    case cudaMemcpyDefault: return "cudaMemcpyDefault";
  }
  return "an unknown cudaMemcpyKind";
}

// Checks a copy as the runtime does, with unified addressing telling device
// memory from host memory; empty when fine, else why not.
std::string check_copy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind) {
  const bool src_dev = memory_kind(src) == Memory::Device;
  const bool dst_dev = memory_kind(dst) == Memory::Device;
  const auto side = [](const char* which, const void* p, bool want_device) {
    return std::string("the ") + which + " is " + describe(p) + ", not " +
           (want_device ? "device" : "host") + " memory";
  };
  const bool known = kind == cudaMemcpyHostToHost || kind == cudaMemcpyHostToDevice ||
                     kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice ||
                     kind == cudaMemcpyDefault;
  if (!known) return "an unknown cudaMemcpyKind";
  if (kind != cudaMemcpyDefault) {
    const bool want_src = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    const bool want_dst = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    if (src_dev != want_src) return side("source", src, want_src);
    if (dst_dev != want_dst) return side("destination", dst, want_dst);
  }
  if (src_dev) {
    const std::string why = check_device_range(src, bytes, "the source");
    if (!why.empty()) return why;
  }
  if (dst_dev) {
    const std::string why = check_device_range(dst, bytes, "the destination");
    if (!why.empty()) return why;
  }
  const auto s = reinterpret_cast<std::uintptr_t>(src), d = reinterpret_cast<std::uintptr_t>(dst);
  if (s < d + bytes && d < s + bytes)
    return "the source and the destination overlap (" + std::to_string(bytes) + " bytes, " +
           std::to_string(s > d ? s - d : d - s) + " apart): cudaMemcpy* does not handle overlap";
  return "";
}

}  // namespace

int device_count() { return devices().count; }
bool has_kernel_image(int device) {
  return device >= 0 && device < device_count() &&
         devices().image[static_cast<std::size_t>(device)];
}
int current_device() { return rt().current; }

cudaError_t fail(cudaError_t err, const std::string& why) {
  Runtime& r = rt();
  r.last = err;
  r.detail_code = err;
  r.detail = why;
  return err;
}

void fatal(const std::string& what) {
  std::fprintf(stderr, "CUDA emulator: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

void enqueue(cudaStream_t s, std::function<void()> work) {
  CUstream_st* st = stream(s);
  st->queue.push_back({++st->queued, std::move(work)});
}

int stream_device(cudaStream_t s) { return stream(s)->device; }

void synchronize_all() { drain_streams(-1, false); }

}  // namespace lwb::emu

using namespace lwb::emu;

// ---- devices -------------------------------------------------------------------------

cudaError_t cudaGetDeviceCount(int* count) {
  *count = device_count();
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (device < 0 || device >= device_count())
    return fail(cudaErrorInvalidDevice, "cudaSetDevice(" + std::to_string(device) +
                                            "): " + std::to_string(device_count()) + " device(s)");
  rt().current = device;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  *device = rt().current;
  return cudaSuccess;
}

// Devices without a kernel image pretend to be older GPUs (sm_61).
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device < 0 || device >= device_count())
    return fail(cudaErrorInvalidDevice, "cudaGetDeviceProperties(" + std::to_string(device) + ")");
  std::memset(prop, 0, sizeof *prop);
  const bool image = has_kernel_image(device);
  std::snprintf(prop->name, sizeof prop->name, "CPU emulation of an sm_%s GPU",
                image ? "90" : "61");
  prop->major = image ? 9 : 6;
  prop->minor = image ? 0 : 1;
  prop->totalGlobalMem = kDeviceBytes;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  cudaDeviceProp prop;
  if (const cudaError_t err = cudaGetDeviceProperties(&prop, device)) return err;
  *value = attr == cudaDevAttrComputeCapabilityMajor   ? prop.major
           : attr == cudaDevAttrComputeCapabilityMinor ? prop.minor
                                                       : 0;
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() {
  drain_streams(rt().current, false);
  return cudaSuccess;
}

// ---- errors -------------------------------------------------------------------------------

cudaError_t cudaGetLastError() {
  const cudaError_t e = rt().last;
  rt().last = cudaSuccess;
  return e;
}
const char* cudaGetErrorName(cudaError_t e) { return error_name(e); }
// The runtime's sentence, and for the error the emulator raised last, why.
const char* cudaGetErrorString(cudaError_t e) {
  Runtime& r = rt();
  r.shown = error_text(e);
  if (e != cudaSuccess && e == r.detail_code) r.shown += " (" + r.detail + ")";
  return r.shown.c_str();
}

// ---- memory -------------------------------------------------------------------------------

cudaError_t cudaMalloc(void** p, std::size_t bytes) {
  synchronize_all();
  *p = nullptr;
  if (bytes == 0) return cudaSuccess;
  *p = device_alloc(bytes, rt().current);
  if (!*p)
    return fail(cudaErrorMemoryAllocation,
                "cudaMalloc of " + std::to_string(bytes) +
                    " bytes on cuda:" + std::to_string(rt().current) + " (" +
                    std::to_string(kDeviceBytes - device_bytes_in_use(rt().current)) +
                    " bytes free)");
  DeviceWork open;
  std::memset(*p, kGarbage, bytes);
  return cudaSuccess;
}

cudaError_t cudaFree(void* p) {
  synchronize_all();
  if (p && !device_free(p))
    return fail(cudaErrorInvalidValue, "cudaFree: the pointer is " + describe(p));
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** p, std::size_t bytes) {
  *p = pinned_alloc(bytes);
  return *p ? cudaSuccess : fail(cudaErrorMemoryAllocation, "cudaMallocHost");
}

cudaError_t cudaFreeHost(void* p) {
  synchronize_all();
  if (p && !pinned_free(p))
    return fail(cudaErrorInvalidValue, "cudaFreeHost: the pointer is " + describe(p));
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(std::size_t* free_b, std::size_t* total_b) {
  *total_b = kDeviceBytes;
  *free_b = kDeviceBytes - device_bytes_in_use(rt().current);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t s) {
  if (bytes == 0) return cudaSuccess;
  const std::string why = check_copy(dst, src, bytes, kind);
  if (!why.empty())
    return fail(cudaErrorInvalidValue,
                std::string("cudaMemcpyAsync(") + kind_name(kind) + "): " + why);
  const Memory from = memory_kind(src), to = memory_kind(dst);
  if (from == Memory::Pageable) {
    std::vector<unsigned char> staged(static_cast<const unsigned char*>(src),
                                      static_cast<const unsigned char*>(src) + bytes);
    enqueue(s,
            [dst, staged = std::move(staged)] { std::memcpy(dst, staged.data(), staged.size()); });
    return cudaSuccess;
  }
  if (from == Memory::Device && to == Memory::Pinned) std::memset(dst, kPoison, bytes);
  enqueue(s, [dst, src, bytes] { std::memcpy(dst, src, bytes); });
  if (from == Memory::Device && to == Memory::Pageable) drain(stream(s));
  return cudaSuccess;
}

// A blocking copy runs on the legacy default stream: it waits for the blocking
// streams, not for those made with cudaStreamNonBlocking.
cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind) {
  drain_streams(rt().current, true);
  if (const cudaError_t err = cudaMemcpyAsync(dst, src, bytes, kind, nullptr)) return err;
  drain(stream(nullptr));
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* p, int value, std::size_t bytes, cudaStream_t s) {
  if (bytes == 0) return cudaSuccess;
  const std::string why = check_device_range(p, bytes, "the destination");
  if (!why.empty()) return fail(cudaErrorInvalidValue, "cudaMemsetAsync: " + why);
  enqueue(s, [p, value, bytes] { std::memset(p, value, bytes); });
  return cudaSuccess;
}

// ---- streams and events -------------------------------------------------------------------------

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags) {
  auto* st = new CUstream_st;
  st->device = rt().current;
  st->blocking = !(flags & cudaStreamNonBlocking);
  rt().streams.push_back(st);
  *s = st;
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t s) {
  auto& all = rt().streams;
  const auto it = std::find(all.begin(), all.end(), s);
  if (it == all.end())
    return fail(cudaErrorInvalidResourceHandle, "cudaStreamDestroy: not a stream");
  drain(s);  // queued work still completes
  all.erase(it);
  delete s;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  if (s && !live(s))
    return fail(cudaErrorInvalidResourceHandle, "cudaStreamSynchronize: not a stream");
  drain(stream(s));
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = new CUevent_st;
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  e->stream = stream(s);
  e->seq = e->stream->queued;
  return cudaSuccess;
}

// The event's stream runs up to the event, and no further.
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  if (e->stream && live(e->stream)) run(e->stream, e->seq);
  return cudaSuccess;
}

// Later work on s may only run after the event: run its stream up to it now.
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t e, unsigned) {
  return cudaEventSynchronize(e);
}
