#pragma once
// Internals shared by the files of the CUDA emulation (gpu/emulation/*.cpp);
// gpu/*.cu see only cuda_emu.h.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <random>
#include <string>

namespace lwb::emu {

// ---- devices (fake_runtime.cpp) --------------------------------------------------------
// LWB_EMU_DEVICES devices (default 1); those listed in LWB_EMU_NO_KERNEL_IMAGE
// (comma-separated ordinals) behave like a GPU this build has no code for.
int device_count();
bool has_kernel_image(int device);
int current_device();

// The generator of every shuffle, from the seed the first use prints
// (LWB_EMU_SEED sets it): block and thread order (scheduler.cpp), stream order.
std::mt19937_64& schedule_rng();

// ---- errors ---------------------------------------------------------------------------
// Records err as the last error (cudaGetLastError) with a sentence saying why,
// which cudaGetErrorString(err) returns until the next error; returns err.
cudaError_t fail(cudaError_t err, const std::string& why);
// A fault the hardware would report asynchronously (an illegal address, a
// hung barrier): print and abort, as a CUDA context is lost for good.
[[noreturn]] void fatal(const std::string& what);

// ---- memory (device_memory.cpp) ---------------------------------------------------------
// Device memory is carved from one reserved region that is PROT_NONE except
// inside a DeviceWork scope, so the host cannot read or write it; pinned host
// memory is separate and always accessible. A SIGSEGV in the region names the
// allocation.
enum class Memory { Device, Pinned, Pageable };
void* device_alloc(std::size_t bytes, int device);  // nullptr when the device is full
bool device_free(void* p);                          // false: not a live allocation
void* pinned_alloc(std::size_t bytes);
bool pinned_free(void* p);
Memory memory_kind(const void* p);
std::size_t device_bytes_in_use(int device);
constexpr std::size_t kDeviceBytes = std::size_t{16} << 30;  // each emulated device's memory
// Empty when [p, p + bytes) lies in one live device allocation, else why not.
std::string check_device_range(const void* p, std::size_t bytes, const char* what);
// "device allocation #3 (4096 bytes on cuda:0, offset 12)" or what p is instead.
std::string describe(const void* p);

class DeviceWork {  // emulated device work (kernels, copies, cuBLAS) runs inside one
 public:
  DeviceWork();
  ~DeviceWork();
  DeviceWork(const DeviceWork&) = delete;
  DeviceWork& operator=(const DeviceWork&) = delete;
};

// ---- streams (fake_runtime.cpp) ----------------------------------------------------------
// Queues work on stream s (null: the legacy default stream) to run at a
// synchronisation that covers it.
void enqueue(cudaStream_t s, std::function<void()> work);
int stream_device(cudaStream_t s);
void synchronize_all();

}  // namespace lwb::emu
