#pragma once
// Argument checks for the CUDA backend's entry points (private). A kernel
// that reads past a view corrupts device memory silently, so every call
// checks, on the host and in O(1), that its tensors live on this backend,
// have the dtype the op supports and hold at least the elements it touches.
// Failures throw std::invalid_argument naming the op and the argument.
//
// device_ptr is how GPU code takes a tensor's address: Tensor::data<T>() is
// for host code and refuses device tensors.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "core/tensor/backend.h"

namespace lwb::gpu {

// The device address of a CUDA tensor's elements (null for an undefined,
// optional tensor), for kernels, copies and cuBLAS.
template <class T>
T* device_ptr(const Tensor& t) {
  if (!t.defined()) return nullptr;
  if (t.device().kind != DeviceKind::Cuda)
    throw std::logic_error("device_ptr of a " + t.device().str() + " tensor");
  return static_cast<T*>(t.raw());
}

class ArgCheck {
 public:
  ArgCheck(const Backend& backend, const char* op) : backend_(backend), op_(op) {}

  // A defined tensor of this backend with dtype `dtype` and >= elems elements.
  const ArgCheck& need(const Tensor& t, const char* arg, DType dtype, std::int64_t elems) const {
    if (!t.defined()) fail(std::string(arg) + " is undefined");
    if (&t.backend() != &backend_)
      fail(std::string(arg) + " lives on " + t.device().str() + ", not on " +
           backend_.device().str());
    if (t.dtype != dtype) {
      if (dtype == DType::F32 && t.dtype != DType::I32)
        throw std::invalid_argument("cuda backend: " + std::string(op_) +
                                    " does not support dtype " + dtype_name(t.dtype));
      fail(std::string(arg) + " has dtype " + dtype_name(t.dtype) + ", expected " +
           dtype_name(dtype));
    }
    if (elems < 0) fail(std::string(arg) + ": negative size");
    if (t.numel() < elems)
      fail(std::string(arg) + " has " + std::to_string(t.numel()) + " elements, the call needs " +
           std::to_string(elems));
    return *this;
  }
  const ArgCheck& f32(const Tensor& t, const char* arg, std::int64_t elems) const {
    return need(t, arg, DType::F32, elems);
  }
  const ArgCheck& i32(const Tensor& t, const char* arg, std::int64_t elems) const {
    return need(t, arg, DType::I32, elems);
  }
  // Same as f32, but an undefined tensor is accepted (optional outputs).
  const ArgCheck& optional_f32(const Tensor& t, const char* arg, std::int64_t elems) const {
    return t.defined() ? f32(t, arg, elems) : *this;
  }
  const ArgCheck& expect(bool ok, const std::string& what) const {
    if (!ok) fail(what);
    return *this;
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw std::invalid_argument("cuda backend: " + std::string(op_) + ": " + what);
  }

 private:
  const Backend& backend_;
  const char* op_;
};

}  // namespace lwb::gpu
