#include "core/tensor/tensor.h"

#include <cassert>
#include <stdexcept>

#include "core/tensor/backend.h"

namespace lwb {

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F32: return 4;
    case DType::F64: return 8;
    case DType::BF16: return 2;
    case DType::I32: return 4;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "f32";
    case DType::F64: return "f64";
    case DType::BF16: return "bf16";
    case DType::I32: return "i32";
  }
  return "?";
}

std::string Device::str() const {
  return kind == DeviceKind::Cpu ? std::string("cpu") : "cuda:" + std::to_string(index);
}

Storage::Storage(Backend& backend, std::size_t bytes)
    : backend_(&backend), data_(backend.allocate(bytes)), bytes_(bytes) {}

Storage::~Storage() { backend_->release(data_, bytes_); }

Shape::Shape(std::initializer_list<std::int64_t> d) {
  if (d.size() > kMaxDims) throw std::invalid_argument("Shape: more than 4 dimensions");
  for (std::int64_t v : d) dims[ndim++] = v;
}

std::int64_t Shape::numel() const {
  std::int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= dims[i];
  return n;
}

std::string Shape::str() const {
  std::string s = "[";
  for (int i = 0; i < ndim; ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

bool Shape::operator==(const Shape& o) const {
  if (ndim != o.ndim) return false;
  for (int i = 0; i < ndim; ++i)
    if (dims[i] != o.dims[i]) return false;
  return true;
}

Device Tensor::device() const { return storage->backend().device(); }

void Tensor::host_access_to_device_tensor() const {
  throw std::logic_error("Tensor::data<T>() on a " + device().str() + " tensor " + shape.str() +
                         ": its memory is not host-addressable; copy it with Backend::download");
}

Tensor Tensor::view(std::int64_t first, Shape new_shape) const {
  assert(first >= 0 && first + new_shape.numel() <= numel());
  Tensor t = *this;
  t.offset = offset + static_cast<std::size_t>(first) * dtype_size(dtype);
  t.shape = new_shape;
  return t;
}

Tensor Tensor::rows(std::int64_t row0, std::int64_t n) const {
  assert(shape.ndim == 2);
  return view(row0 * shape[1], Shape{n, shape[1]});
}

Tensor make_tensor(Backend& backend, Shape shape, DType dtype) {
  Tensor t;
  t.shape = shape;
  t.dtype = dtype;
  t.storage = std::make_shared<Storage>(backend, std::max<std::size_t>(t.nbytes(), 1));
  backend.fill(t, 0.0);
  return t;
}

}  // namespace lwb
