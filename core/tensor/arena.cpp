#include "core/tensor/arena.h"

#include <algorithm>
#include <stdexcept>

#include "core/tensor/backend.h"

namespace lwb {

namespace {
std::size_t round_up(std::size_t v, std::size_t a) { return (v + a - 1) / a * a; }
}  // namespace

TensorArena::~TensorArena() { release(); }

void TensorArena::add(Tensor* owner, int layer, std::string module, Shape shape) {
  if (materialized()) throw std::logic_error("TensorArena::add after materialize");
  const std::size_t bytes = static_cast<std::size_t>(shape.numel()) * dtype_size(dtype_);
  Slot slot{owner, layer, std::move(module), shape, bytes_, round_up(bytes, kAlignment)};
  bytes_ += slot.span_bytes;
  slots_.push_back(std::move(slot));
}

void TensorArena::mirror(const TensorArena& other, const std::string& module_suffix) {
  if (dtype_size(other.dtype_) != dtype_size(dtype_))
    throw std::logic_error("TensorArena::mirror: element sizes differ");
  for (const Slot& s : other.slots_) add(nullptr, s.layer, s.module + module_suffix, s.shape);
}

void TensorArena::materialize(Backend& backend, MemoryLedger& ledger) {
  if (materialized()) throw std::logic_error("TensorArena::materialize twice");
  flat_.dtype = dtype_;
  flat_.shape = Shape{static_cast<std::int64_t>(bytes_ / dtype_size(dtype_))};
  // A zero-byte arena still gets a (1-byte) storage so views stay valid.
  flat_.storage = std::make_shared<Storage>(backend, std::max<std::size_t>(bytes_, 1));
  backend.fill(flat_, 0.0);
  ledger_ = &ledger;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (s.owner) *s.owner = slot_tensor(i);
    ledger_ids_.push_back(ledger.add(s.layer, s.module, category_, s.span_bytes));
  }
}

void TensorArena::release() {
  if (ledger_)
    for (auto id : ledger_ids_) ledger_->remove(id);
  ledger_ids_.clear();
  ledger_ = nullptr;
  for (Slot& s : slots_)
    if (s.owner) *s.owner = Tensor{};
  flat_ = Tensor{};
}

Tensor TensorArena::slot_tensor(std::size_t i) const {
  const Slot& s = slots_.at(i);
  return flat_.view(static_cast<std::int64_t>(s.offset / dtype_size(dtype_)), s.shape);
}

std::int64_t TensorArena::numel_without_padding() const {
  std::int64_t n = 0;
  for (const Slot& s : slots_) n += s.shape.numel();
  return n;
}

void ParameterSet::add(Tensor* param, Tensor* grad, int layer, std::string module, Shape shape,
                       bool weight_decay) {
  pending_.push_back({param, grad, layer, std::move(module), shape, weight_decay});
}

void ParameterSet::layout() {
  std::stable_partition(pending_.begin(), pending_.end(), [](const Pending& p) { return p.decay; });
  for (const Pending& p : pending_) {
    params_.add(p.param, p.layer, p.module, p.shape);
    grads_.add(p.grad, p.layer, p.module, p.shape);
    if (p.decay) decay_prefix_numel_ = static_cast<std::int64_t>(params_.bytes() / dtype_size(params_.dtype()));
  }
  pending_.clear();
}

void ParameterSet::materialize(Backend& backend, MemoryLedger& ledger) {
  layout();
  params_.materialize(backend, ledger);
  grads_.materialize(backend, ledger);
}

Tensor ParameterSet::mirror_of(const Tensor& param, const TensorArena& mirror) const {
  const std::size_t esize = dtype_size(param.dtype);
  const auto first = static_cast<std::int64_t>((param.offset - params_.flat().offset) / esize);
  return mirror.flat().view(first, param.shape);
}

void ParameterSet::release() {
  params_.release();
  grads_.release();
}

}  // namespace lwb
