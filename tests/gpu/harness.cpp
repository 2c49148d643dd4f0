#include "harness.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
#include <numeric>

#include "core/tensor/rng.h"

namespace lwb::gpucheck {

// ---- report ---------------------------------------------------------------------------

void Report::add(Row row) {
  rows_.push_back(std::move(row));
  if (verbose || !rows_.back().pass) print_line(rows_.back(), verbose);
}

int Report::failures() const {
  int n = 0;
  for (const Row& r : rows_) n += !r.pass;
  return n;
}

namespace {
std::string num(double v) {
  if (std::isnan(v)) return "nan";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2e", v);
  return buf;
}
}  // namespace

void Report::print_line(const Row& r, bool with_outputs) const {
  const bool numeric = r.limit > 0;
  std::printf("%-4s %-22s %-34s %-10s %9s %9s  %s\n", r.pass ? "ok" : "FAIL", r.op.c_str(),
              r.shape.c_str(), r.worst.c_str(), numeric ? num(r.err).c_str() : "-",
              numeric ? num(r.limit).c_str() : "-", r.note.c_str());
  if (with_outputs)
    for (const Output& o : r.outputs)
      std::printf("       %-30s %9s %9s\n", o.name.c_str(), num(o.err).c_str(),
                  num(o.limit).c_str());
  std::fflush(stdout);
}

void Report::print_table(bool failures_only) const {
  std::printf("\n%-4s %-22s %-34s %-10s %9s %9s  %s\n", "", "op", "shape", "output", "NMSE",
              "limit", "note");
  std::printf("%s\n", std::string(110, '-').c_str());
  for (const Row& r : rows_)
    if (!failures_only || !r.pass) print_line(r, false);
  std::printf("%s\n", std::string(110, '-').c_str());
}

// ---- data -------------------------------------------------------------------------------

std::vector<float> uniform(std::int64_t n, std::uint64_t seed, float lo, float hi) {
  SplitMix rng(seed * 0x9E3779B97F4A7C15ull + 17);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = lo + (hi - lo) * static_cast<float>(rng.uniform());
  if (n > 0) {
    bool all_zero = true;
    for (float x : v) all_zero = all_zero && x == 0.0f;
    if (all_zero) v[0] = 0.5f;
  }
  return v;
}

std::vector<float> nonzero(std::int64_t n, std::uint64_t seed) {
  SplitMix rng(seed * 0xD1B54A32D192ED03ull + 5);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& x : v) {
    const float mag = 0.1f + static_cast<float>(rng.uniform());
    x = (rng.next() & 1) ? mag : -mag;
  }
  return v;
}

std::vector<std::int32_t> integers(std::int64_t n, std::uint64_t seed, std::int32_t lo,
                                   std::int32_t hi) {
  SplitMix rng(seed * 0xA24BAED4963EE407ull + 3);
  std::vector<std::int32_t> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = static_cast<std::int32_t>(rng.between(lo, hi));
  return v;
}

// ---- guarded tensors ------------------------------------------------------------------------

Guarded make_guarded(Backend& be, Shape shape, DType dtype, const void* host_data) {
  Guarded g;
  g.backend = &be;
  g.numel = shape.numel();
  const std::size_t es = dtype_size(dtype);
  g.whole = make_tensor(be, Shape{g.numel + 2 * kGuard}, dtype);
  std::vector<unsigned char> bytes(g.whole.nbytes(), kSentinel);
  if (host_data && g.numel > 0)
    std::memcpy(bytes.data() + kGuard * es, host_data, static_cast<std::size_t>(g.numel) * es);
  be.upload(g.whole, bytes.data(), bytes.size());
  g.t = g.whole.view(kGuard, shape);
  return g;
}

bool Guarded::guards_intact() const {
  std::vector<unsigned char> bytes(whole.nbytes());
  backend->download(bytes.data(), whole, bytes.size());
  const std::size_t es = dtype_size(whole.dtype);
  const std::size_t head = kGuard * es, tail_start = head + static_cast<std::size_t>(numel) * es;
  for (std::size_t i = 0; i < head; ++i)
    if (bytes[i] != kSentinel) return false;
  for (std::size_t i = tail_start; i < bytes.size(); ++i)
    if (bytes[i] != kSentinel) return false;
  return true;
}

std::vector<float> read_f32(const Guarded& g) {
  std::vector<float> v(static_cast<std::size_t>(g.numel));
  g.backend->download(v.data(), g.t, v.size() * sizeof(float));
  return v;
}

std::vector<std::int32_t> read_i32(const Guarded& g) {
  std::vector<std::int32_t> v(static_cast<std::size_t>(g.numel));
  g.backend->download(v.data(), g.t, v.size() * sizeof(std::int32_t));
  return v;
}

// ---- comparison
// ----------------------------------------------------------------------------------

double nmse(const std::vector<float>& ref, const std::vector<float>& got) {
  if (ref.size() != got.size()) return std::numeric_limits<double>::quiet_NaN();
  double num = 0, den = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double a = ref[i], b = got[i];
    if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<double>::quiet_NaN();
    if (std::isinf(a) || std::isinf(b)) {
      if (a != b) return std::numeric_limits<double>::infinity();
      continue;  // the same infinity
    }
    num += (a - b) * (a - b);
    den += a * a;
  }
  if (den == 0) return num == 0 ? 0.0 : std::numeric_limits<double>::infinity();
  return num / den;
}

Case::Case(Report& report, std::string group, std::string op, std::string shape, double limit)
    : report_(report) {
  row_.group = std::move(group);
  row_.op = std::move(op);
  row_.shape = std::move(shape);
  row_.limit = limit;
  row_.err = 0;
}

Case::~Case() {
  if (!finished_) {
    row_.pass = false;
    note("aborted by an exception (see the next line)");
    report_.add(row_);
  }
}

Pair Case::f32(Backend& cpu, Backend& gpu, Shape shape, const std::vector<float>& v) {
  Pair p{make_guarded(cpu, shape, DType::F32, v.data()),
         make_guarded(gpu, shape, DType::F32, v.data())};
  watched_.push_back(p.gpu);
  return p;
}

Pair Case::i32(Backend& cpu, Backend& gpu, Shape shape, const std::vector<std::int32_t>& v) {
  Pair p{make_guarded(cpu, shape, DType::I32, v.data()),
         make_guarded(gpu, shape, DType::I32, v.data())};
  watched_.push_back(p.gpu);
  return p;
}

void Case::compare(const std::string& name, const Pair& p, double limit) {
  compare(name, read_f32(p.cpu), read_f32(p.gpu), limit);
}

void Case::compare(const std::string& name, const std::vector<float>& cpu,
                   const std::vector<float>& gpu, double limit) {
  record(name, nmse(cpu, gpu), limit);
}

void Case::compare_most(const std::string& name, const std::vector<float>& cpu,
                        const std::vector<float>& gpu, double fraction, double limit) {
  double e = nmse(cpu, gpu);  // NaN and unmatched Inf fail as in compare
  if (std::isfinite(e)) {
    std::vector<double> sq(cpu.size());
    double den = 0;
    for (std::size_t i = 0; i < cpu.size(); ++i) {
      if (!std::isfinite(cpu[i])) continue;  // the same infinity on both sides
      const double d = static_cast<double>(cpu[i]) - gpu[i];
      sq[i] = d * d;
      den += static_cast<double>(cpu[i]) * cpu[i];
    }
    const auto aside = sq.begin() + static_cast<std::ptrdiff_t>(fraction * sq.size());
    std::nth_element(sq.begin(), aside, sq.end(), std::greater<>());
    e = den > 0 ? std::accumulate(aside, sq.end(), 0.0) / den : 0.0;
  }
  record(name, e, limit);
}

void Case::record(const std::string& name, double e, double limit) {
  const double lim = limit > 0 ? limit : row_.limit;
  row_.outputs.push_back({name, e, lim});
  const bool ok = !std::isnan(e) && e <= lim;
  const double ratio = std::isnan(e) ? std::numeric_limits<double>::infinity() : e / lim;
  if (ratio > worst_ratio_) {
    worst_ratio_ = ratio;
    row_.worst = name;
    row_.err = e;
    row_.limit = lim;
  }
  if (!ok) {
    row_.pass = false;
    note(name + (std::isnan(e) ? " has NaN" : " NMSE " + num(e) + " > " + num(lim)));
  }
}

void Case::compare_scalar(const std::string& name, double ref, double got, double limit) {
  const double lim = limit > 0 ? limit : row_.limit;
  double e;
  if (std::isnan(ref) || std::isnan(got))
    e = std::numeric_limits<double>::quiet_NaN();
  else if (ref == 0)
    e = got == 0 ? 0.0 : std::numeric_limits<double>::infinity();
  else
    e = (ref - got) * (ref - got) / (ref * ref);
  row_.outputs.push_back({name, e, lim});
  const double ratio = std::isnan(e) ? std::numeric_limits<double>::infinity() : e / lim;
  if (ratio > worst_ratio_) {
    worst_ratio_ = ratio;
    row_.worst = name;
    row_.err = e;
    row_.limit = lim;
  }
  if (std::isnan(e) || e > lim) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "%s: cpu %.17g, gpu %.17g", name.c_str(), ref, got);
    fail(buf);
  }
}

void Case::compare_exact_i32(const std::string& name, const Pair& p) {
  const auto a = read_i32(p.cpu), b = read_i32(p.gpu);
  std::int64_t diff = 0, first = -1;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) {
      if (first < 0) first = static_cast<std::int64_t>(i);
      ++diff;
    }
  if (row_.worst.empty()) row_.worst = name;
  if (diff) {
    fail(name + ": " + std::to_string(diff) + " of " + std::to_string(a.size()) +
         " differ (first at " + std::to_string(first) + ": cpu " +
         std::to_string(a[static_cast<std::size_t>(first)]) + ", gpu " +
         std::to_string(b[static_cast<std::size_t>(first)]) + ")");
  }
}

void Case::expect(bool ok, const std::string& what) {
  if (!ok) fail(what);
}

void Case::fail(const std::string& why) {
  row_.pass = false;
  note(why);
}

void Case::finish() {
  if (finished_) return;
  int bad = 0;
  for (const Guarded& g : watched_) bad += !g.guards_intact();
  if (bad) fail(std::to_string(bad) + " buffer(s) written out of bounds (guard bytes changed)");
  finished_ = true;
  report_.add(row_);
}

void guarded_run(Report& report, const std::string& group, const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    Row r;
    r.group = group;
    r.op = group;
    r.shape = "(exception)";
    r.pass = false;
    r.note = e.what();
    report.add(r);
  }
}

}  // namespace lwb::gpucheck
