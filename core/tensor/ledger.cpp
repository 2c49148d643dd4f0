#include "core/tensor/ledger.h"

#include <algorithm>
#include <map>

namespace lwb {

const char* mem_category_name(MemCategory c) {
  switch (c) {
    case MemCategory::FrozenWeights: return "frozen weights";
    case MemCategory::TrainableWeights: return "trainable weights";
    case MemCategory::Activations: return "activations";
    case MemCategory::Gradients: return "gradients";
    case MemCategory::OptimizerState: return "optimizer state";
    case MemCategory::Workspace: return "workspace";
  }
  return "?";
}

const char* mem_category_key(MemCategory c) {
  switch (c) {
    case MemCategory::FrozenWeights: return "frozen_weights";
    case MemCategory::TrainableWeights: return "trainable_weights";
    case MemCategory::Activations: return "activations";
    case MemCategory::Gradients: return "gradients";
    case MemCategory::OptimizerState: return "optimizer_state";
    case MemCategory::Workspace: return "workspace";
  }
  return "?";
}

MemoryLedger::Id MemoryLedger::add(int layer, std::string module, MemCategory category,
                                   std::size_t bytes) {
  std::lock_guard lock(mutex_);
  const Id id = next_id_++;
  entries_.emplace(id, LedgerEntry{layer, std::move(module), category, bytes});
  auto& cur = current_[static_cast<int>(category)];
  cur += bytes;
  peak_[static_cast<int>(category)] = std::max(peak_[static_cast<int>(category)], cur);
  total_ += bytes;
  peak_total_ = std::max(peak_total_, total_);
  ++version_;
  return id;
}

void MemoryLedger::remove(Id id) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  current_[static_cast<int>(it->second.category)] -= it->second.bytes;
  total_ -= it->second.bytes;
  entries_.erase(it);
  ++version_;
}

std::size_t MemoryLedger::current(MemCategory c) const {
  std::lock_guard lock(mutex_);
  return current_[static_cast<int>(c)];
}

std::size_t MemoryLedger::total() const {
  std::lock_guard lock(mutex_);
  return total_;
}

std::size_t MemoryLedger::peak_total() const {
  std::lock_guard lock(mutex_);
  return peak_total_;
}

std::uint64_t MemoryLedger::version() const {
  std::lock_guard lock(mutex_);
  return version_;
}

std::vector<LedgerEntry> MemoryLedger::entries() const {
  std::lock_guard lock(mutex_);
  std::vector<LedgerEntry> out;
  out.reserve(entries_.size());
  for (const auto& [id, e] : entries_) out.push_back(e);
  std::sort(out.begin(), out.end(), [](const LedgerEntry& a, const LedgerEntry& b) {
    return a.layer != b.layer ? a.layer < b.layer : a.module < b.module;
  });
  return out;
}

LedgerSnapshot MemoryLedger::snapshot() const {
  std::lock_guard lock(mutex_);
  std::map<int, CategoryBytes> by_layer;
  for (const auto& [id, e] : entries_) by_layer[e.layer][static_cast<int>(e.category)] += e.bytes;
  LedgerSnapshot s;
  for (const auto& [layer, bytes] : by_layer) s.rows.push_back({layer, bytes});
  s.current = current_;
  s.peak = peak_;
  s.total = total_;
  s.peak_total = peak_total_;
  s.version = version_;
  return s;
}

}  // namespace lwb
