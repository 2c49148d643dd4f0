#pragma once
// MemoryLedger: every buffer the engine allocates is registered here under
// (layer, module, category). The per-layer bars in the window and the planner's
// calibration read it; nothing in it is estimated.
#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace lwb {

enum class MemCategory : std::uint8_t {
  FrozenWeights,
  TrainableWeights,
  Activations,
  Gradients,
  OptimizerState,
  Workspace,
};
inline constexpr int kMemCategoryCount = 6;
const char* mem_category_name(MemCategory c);  // "frozen weights"
const char* mem_category_key(MemCategory c);   // "frozen_weights"

using CategoryBytes = std::array<std::size_t, kMemCategoryCount>;

// Layer index used for buffers that belong to no transformer layer
// (embedding, final norm, lm head, logits, the optimiser's scalars).
inline constexpr int kModelLevel = -1;

struct LedgerEntry {
  int layer = kModelLevel;
  std::string module;
  MemCategory category = MemCategory::Workspace;
  std::size_t bytes = 0;
};

struct LedgerSnapshot {
  struct Row {
    int layer = kModelLevel;
    CategoryBytes bytes{};
  };
  std::vector<Row> rows;  // kModelLevel first, then layers in order
  CategoryBytes current{};
  CategoryBytes peak{};  // per category, the largest value it has held
  std::size_t total = 0;
  std::size_t peak_total = 0;
  std::uint64_t version = 0;
};

class MemoryLedger {
 public:
  using Id = std::uint64_t;
  Id add(int layer, std::string module, MemCategory category, std::size_t bytes);
  void remove(Id id);

  std::size_t current(MemCategory c) const;
  std::size_t total() const;
  std::size_t peak_total() const;
  std::uint64_t version() const;
  std::vector<LedgerEntry> entries() const;
  LedgerSnapshot snapshot() const;

 private:
  mutable std::mutex mutex_;
  std::unordered_map<Id, LedgerEntry> entries_;
  CategoryBytes current_{};
  CategoryBytes peak_{};
  std::size_t total_ = 0;
  std::size_t peak_total_ = 0;
  Id next_id_ = 1;
  std::uint64_t version_ = 0;
};

}  // namespace lwb
