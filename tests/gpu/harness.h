#pragma once
// gpu_check's harness (after ggml's test-backend-ops): every op case builds
// the same random inputs on the CPU backend (the reference) and the CUDA
// backend, runs the op on both and compares each output by normalised error
// NMSE = sum (cpu - gpu)^2 / sum cpu^2 against a per-op limit. NaN fails, an
// Inf must be matched by the same Inf. Every tensor a case makes is a view
// into a larger buffer whose guard bytes are set to a sentinel; after the op
// the guards are read back, so an out-of-bounds write fails the case.
// Qt-free on purpose: the GPU machine has no Qt.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor/backend.h"

namespace lwb::gpucheck {

// ---- results -------------------------------------------------------------------
struct Output {  // one numeric comparison of a row
  std::string name;
  double err, limit;
};

struct Row {
  std::string group, op, shape, worst;  // worst: the output with the largest err / limit
  double err = 0, limit = 0;            // NaN err: not a numeric row
  bool pass = true;
  std::string note;
  std::vector<Output> outputs;  // every comparison, printed with --verbose (for calibrating limits)
};

class Report {
 public:
  void add(Row row);
  const std::vector<Row>& rows() const { return rows_; }
  int failures() const;
  void print_table(bool failures_only) const;
  void print_line(const Row& r, bool with_outputs) const;
  bool verbose = false;

 private:
  std::vector<Row> rows_;
};

// ---- data ---------------------------------------------------------------------------
// Uniform in [lo, hi), deterministic in seed, never all zero.
std::vector<float> uniform(std::int64_t n, std::uint64_t seed, float lo = -1.0f, float hi = 1.0f);
// |v| in [0.1, 1.1) with a random sign: never zero (for masks and divisors).
std::vector<float> nonzero(std::int64_t n, std::uint64_t seed);
std::vector<std::int32_t> integers(std::int64_t n, std::uint64_t seed, std::int32_t lo,
                                   std::int32_t hi);  // in [lo, hi]

// ---- guarded tensors ------------------------------------------------------------------
inline constexpr std::int64_t kGuard = 37;  // elements each side; odd, so views are unaligned
inline constexpr unsigned char kSentinel = 0xA5;

struct Guarded {
  Backend* backend = nullptr;
  Tensor whole;  // guard + data + guard
  Tensor t;      // the view the op sees
  std::int64_t numel = 0;
  // True when every guard byte still holds the sentinel.
  bool guards_intact() const;
};

Guarded make_guarded(Backend& be, Shape shape, DType dtype, const void* host_data);
inline Guarded make_f32(Backend& be, Shape shape, const std::vector<float>& v) {
  return make_guarded(be, shape, DType::F32, v.data());
}
std::vector<float> read_f32(const Guarded& g);
std::vector<std::int32_t> read_i32(const Guarded& g);

// The same data on both backends.
struct Pair {
  Guarded cpu, gpu;
};

// ---- one case -------------------------------------------------------------------------
// Collects the comparisons of one op on one shape into one report row.
class Case {
 public:
  Case(Report& report, std::string group, std::string op, std::string shape, double limit);
  ~Case();  // records the row if finish() was not called (exception path records failure)

  Pair f32(Backend& cpu, Backend& gpu, Shape shape, const std::vector<float>& v);
  Pair i32(Backend& cpu, Backend& gpu, Shape shape, const std::vector<std::int32_t>& v);
  // Registers an extra GPU buffer whose guards are checked.
  void watch(const Guarded& g) { watched_.push_back(g); }

  // NMSE of gpu against cpu, with this case's limit (or `limit` when > 0).
  void compare(const std::string& name, const Pair& p, double limit = 0);
  void compare(const std::string& name, const std::vector<float>& cpu,
               const std::vector<float>& gpu, double limit = 0);
  // NMSE over all elements but the `fraction` that differ most: for outputs in
  // which a few elements may rightly go their own way (Adam's sign flips).
  void compare_most(const std::string& name, const std::vector<float>& cpu,
                    const std::vector<float>& gpu, double fraction, double limit);
  // (ref - got)^2 / ref^2 for scalars (sum, loss).
  void compare_scalar(const std::string& name, double ref, double got, double limit = 0);
  void compare_exact_i32(const std::string& name, const Pair& p);
  void expect(bool ok, const std::string& what);  // a plain condition
  void note(const std::string& n) { row_.note += (row_.note.empty() ? "" : "; ") + n; }
  void fail(const std::string& why);
  void finish();

 private:
  void record(const std::string& name, double err, double limit);

  Report& report_;
  Row row_;
  double worst_ratio_ = -1;
  bool finished_ = false;
  std::vector<Guarded> watched_;
};

double nmse(const std::vector<float>& ref, const std::vector<float>& got);

// ---- registry ---------------------------------------------------------------------------
struct Env {
  Backend& cpu;
  Backend& gpu;       // fp32 GEMMs
  Backend& gpu_tf32;  // TF32 GEMMs
  Report& report;
};

struct Group {
  std::string name;
  std::string what;
  std::function<void(Env&)> run;
};

std::vector<Group> op_groups();
std::vector<Group> model_groups();

// Runs fn, turning an exception into a failed row of `group`.
void guarded_run(Report& report, const std::string& group, const std::function<void()>& fn);

}  // namespace lwb::gpucheck
