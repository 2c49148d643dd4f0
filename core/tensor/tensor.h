#pragma once
// Tensor: a typed, shaped view into a Storage that a Backend allocated.
// Tensors are cheap to copy (a shared_ptr and a few integers), so ops take them
// by const reference and views can be made in the step loop without allocating.
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>

namespace lwb {

enum class DType : std::uint8_t { F32, F64, BF16, I32 };
std::size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);

enum class DeviceKind : std::uint8_t { Cpu, Cuda };
struct Device {
  DeviceKind kind = DeviceKind::Cpu;
  int index = 0;
  std::string str() const;  // "cpu", "cuda:0"
  bool operator==(const Device&) const = default;
};

class Backend;

// One allocation made by a backend; released through the same backend.
class Storage {
 public:
  Storage(Backend& backend, std::size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }
  Backend& backend() const { return *backend_; }

 private:
  Backend* backend_;
  void* data_;
  std::size_t bytes_;
};

struct Shape {
  static constexpr int kMaxDims = 4;
  std::array<std::int64_t, kMaxDims> dims{};
  int ndim = 0;
  Shape() = default;
  Shape(std::initializer_list<std::int64_t> d);
  std::int64_t operator[](int i) const { return dims[i]; }
  std::int64_t numel() const;
  std::string str() const;  // "[4, 128]"
  bool operator==(const Shape& o) const;
};

struct Tensor {
  std::shared_ptr<Storage> storage;
  std::size_t offset = 0;  // bytes from the start of storage
  Shape shape;
  DType dtype = DType::F32;

  bool defined() const { return storage != nullptr; }
  std::int64_t numel() const { return shape.numel(); }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype); }
  // The address of the first element, in the memory of the tensor's device.
  void* raw() const { return static_cast<char*>(storage->data()) + offset; }
  // The elements, for host code: CPU tensors only. A device pointer is not
  // host-addressable (the GPU backend uses gpu::device_ptr), so asking for
  // one here throws std::logic_error instead of crashing or reading garbage.
  template <class T>
  T* data() const {
    if (device().kind != DeviceKind::Cpu) host_access_to_device_tensor();
    return reinterpret_cast<T*>(raw());
  }
  Device device() const;
  Backend& backend() const { return storage->backend(); }

  // A view of `count` elements starting `first` elements in, with a new shape.
  Tensor view(std::int64_t first, Shape new_shape) const;
  // Rows [row0, row0 + n) of a 2-D tensor.
  Tensor rows(std::int64_t row0, std::int64_t n) const;

 private:
  [[noreturn]] void host_access_to_device_tensor() const;
};

// A standalone tensor with its own Storage.
Tensor make_tensor(Backend& backend, Shape shape, DType dtype);

}  // namespace lwb
