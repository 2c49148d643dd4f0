#include "core/adapters/vera.h"

#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "core/adapters/adapter_state.h"
#include "core/adapters/lora.h"
#include "core/adapters/peft_config.h"
#include "core/common/errors.h"
#include "core/model/weights_init.h"

namespace lwb {

namespace {

constexpr const char* kKey = "vera.projection_prng_key";
constexpr const char* kSaveProjection = "vera.save_projection";
constexpr const char* kDInitial = "vera.d_initial";
constexpr double kMaxKey = 4294967295.0;  // torch's mt19937 keeps a seed's low 32 bits

// torch's tensor.uniform_(-bound, bound, generator) on the CPU: one draw per
// element in row-major order (a serial kernel), as at::uniform_real_distribution
// turns it into a number: float32 from one 32-bit draw (its low 24 bits),
// float64 from two (the first one high, their low 53 bits), then
// x · (to - from) + from in the tensor's own type as one fused multiply-add:
// PyTorch's CPU kernels for AVX2 and AVX-512 machines are compiled with FMA
// and contract it (checked against torch 2.15 here: every draw equal; a
// plain multiply and add differs in the last bit for about half of them).
template <class T>
T torch_uniform(std::mt19937& engine, T from, T to) {
  constexpr int digits = std::numeric_limits<T>::digits;
  std::uint64_t bits = engine();
  if constexpr (digits > 32) bits = (bits << 32) | engine();
  const T x = static_cast<T>(bits & ((std::uint64_t{1} << digits) - 1)) *
              (T(1) / static_cast<T>(std::uint64_t{1} << digits));
  return std::fma(x, to - from, from);
}

// PEFT's _kaiming_init: kaiming_uniform with gain sqrt(2) over fan_in = the
// tensor's column count, bound = sqrt(3) · sqrt(2) / sqrt(fan_in), each step
// in Python's double.
std::vector<double> kaiming(std::mt19937& engine, std::int64_t rows, std::int64_t cols, bool float64) {
  const double std_dev = std::sqrt(2.0) / std::sqrt(static_cast<double>(cols));
  const double bound = std::sqrt(3.0) * std_dev;
  std::vector<double> out(static_cast<std::size_t>(rows * cols));
  for (double& v : out)
    v = float64 ? torch_uniform<double>(engine, -bound, bound)
                : torch_uniform<float>(engine, static_cast<float>(-bound), static_cast<float>(bound));
  return out;
}

std::vector<AdapterTensorSpec> vera_tensor_table() {
  return {{"vera_lambda_b", [](std::int64_t, std::int64_t out, std::int64_t) { return std::vector{out}; }},
          {"vera_lambda_d", [](std::int64_t, std::int64_t, std::int64_t r) { return std::vector{r}; }},
          {"vera_A", [](std::int64_t in, std::int64_t, std::int64_t r) { return std::vector{r, in}; }, false, true},
          {"vera_B", [](std::int64_t, std::int64_t out, std::int64_t r) { return std::vector{out, r}; }, false, true}};
}

std::unique_ptr<AdapterLinear> vera_module(int layer, Target t, const ModelConfig& model, const AdapterConfig& c) {
  return std::make_unique<VeraLinear>(layer, t, model, c);
}

void attach_vera(Model& model, const AdapterConfig& c) {
  for (int l = 0; l < model.config().layers; ++l)
    for (Target t : c.targets) model.replace_linear(vera_module(l, t, model.config(), c));
}

// ---- PEFT's adapter_config.json -------------------------------------------------

void write_vera_config(const AdapterState& s, nlohmann::json& j) {
  const AdapterConfig& c = s.config;
  j["r"] = c.r;
  j["projection_prng_key"] = static_cast<std::int64_t>(c.option(kKey));
  j["save_projection"] = c.option(kSaveProjection) != 0;
  j["vera_dropout"] = c.dropout;
  j["d_initial"] = c.option(kDInitial);
  j["init_weights"] = true;
  j["layers_pattern"] = nullptr;
}

void read_vera_config(const PeftConfigReader& c, PeftAdapterFields& out) {
  AdapterConfig& a = out.config;
  a.r = c.integer("r", 256, 1);  // VeraConfig's default
  a.dropout = c.number("vera_dropout", 0);
  a.set_option(kKey, static_cast<double>(c.integer<std::int64_t>("projection_prng_key", 0, 0,
                                                                  static_cast<std::int64_t>(kMaxKey))));
  a.set_option(kSaveProjection, c.boolean("save_projection", true));
  // Only the initial λ_d; the file's vectors replace it.
  const double d = c.number("d_initial", 0.1);
  if (!(d > 0)) c.fail("d_initial", "must be positive (λ_d starts there; at 0 nothing trains), got " + std::to_string(d));
  a.set_option(kDInitial, d);
}

// Saved without projections (save_projection false), the file holds only the
// vectors; PEFT then draws vera_A and vera_B again from the key, in
// PyTorch's default float32, and so does this, for the base model's shape.
void vera_from_file(AdapterState& s, const std::map<std::string, std::string>&, const std::string& source) {
  const AdapterConfig& c = s.config;
  const std::string a_key = model_level_key("vera_A"), b_key = model_level_key("vera_B");
  const bool present = s.tensors.contains(a_key) && s.tensors.contains(b_key);
  if (c.option(kSaveProjection) != 0) {
    if (!present)
      throw FormatError(source, "holds no " + a_key + " / " + b_key +
                                    " although adapter_config.json says save_projection = true (PEFT refuses it too)");
    return;
  }
  if (!s.model_known()) {
    if (present) return;
    throw FormatError(source, "holds no " + a_key + " / " + b_key +
                                  " (save_projection = false): they are drawn again from projection_prng_key at the "
                                  "base model's size; read the adapter against its base model");
  }
  // PEFT never loads a file's projections when save_projection is false
  // (non-persistent buffers): the key's are used either way.
  const LinearShape extent = adapted_extent(c, s.model);
  VeraProjections p = vera_projections(static_cast<std::uint64_t>(c.option(kKey)), c.r, extent.in, extent.out);
  s.tensors[a_key] = HostTensor{{c.r, extent.in}, std::vector<float>(p.A.begin(), p.A.end())};
  s.tensors[b_key] = HostTensor{{extent.out, c.r}, std::vector<float>(p.B.begin(), p.B.end())};
}

void vera_to_file(const AdapterState& s, std::map<std::string, HostTensor>& tensors) {
  if (s.config.option(kSaveProjection) != 0) return;
  tensors.erase(model_level_key("vera_A"));
  tensors.erase(model_level_key("vera_B"));
}

}  // namespace

VeraProjections vera_projections(std::uint64_t key, int r, int max_in, int max_out, bool float64) {
  std::mt19937 engine(static_cast<std::uint32_t>(key));
  VeraProjections p;
  p.A = kaiming(engine, r, max_in, float64);
  p.B = kaiming(engine, max_out, r, float64);
  return p;
}

VeraLinear::VeraLinear(int layer, Target target, const ModelConfig& model, const AdapterConfig& config)
    : AdapterLinear(layer, target, linear_shape(model, target), config, adapted_extent(config, model)),
      max_in_(adapted_extent(config, model).in),
      d_initial_(config.option(kDInitial)),
      key_(static_cast<std::uint32_t>(config.option(kKey))) {}

std::vector<std::pair<Tensor*, Tensor*>> VeraLinear::table_members() {
  return {{&lambda_b, &lambda_b_grad}, {&lambda_d, &lambda_d_grad}};
}

// Scratch after the base part (du [rows, r], the dropped input's gradient):
// λ_d ⊙ u [rows, r], then v = (λ_d ⊙ u) Bᵀ [rows, out], reused for λ_b ⊙ dy.
std::int64_t VeraLinear::scratch_elems(std::int64_t max_rows) const {
  return base_scratch_elems(max_rows) + max_rows * (r_ + out());
}

void VeraLinear::initialize(Backend& backend, std::uint64_t) {
  if (owns_shared()) {
    const VeraProjections p = vera_projections(key_, r_, static_cast<int>(max_in_),
                                               static_cast<int>(vera_B().shape.dims[0]));
    upload_values(backend, vera_A(), p.A);
    upload_values(backend, vera_B(), p.B);
  }
  backend.fill(lambda_d, d_initial_);
  backend.fill(lambda_b, 0.0);
}

void VeraLinear::forward(const ForwardContext& ctx, const Tensor& x, const Tensor& y) {
  Linear::forward(ctx, x, y);
  Backend& be = ctx.backend;
  const std::int64_t n = ctx.rows;
  const Tensor xa = adapter_input(ctx, x, true);
  const Tensor ud = extra_scratch(ctx, 0, Shape{n, r_}), v = extra_scratch(ctx, n * r_, Shape{n, out()});
  be.gemm(false, true, n, r_, in(), 1.0, xa, in(), vera_A(), max_in_, 0.0, u_, r_);  // u = xa Aᵀ
  be.scale_columns(ud, u_, lambda_d, n, r_);
  be.gemm(false, true, n, out(), r_, 1.0, ud, r_, vera_B(), r_, 0.0, v, out());  // v = (λ_d ⊙ u) Bᵀ
  be.scale_columns(v, v, lambda_b, n, out());
  be.axpy(y.view(0, Shape{n, out()}), 1.0, v);
}

void VeraLinear::backward(const ForwardContext& ctx, const Tensor& x, const Tensor& dy, const Tensor& dx,
                          double dx_beta) {
  Linear::backward(ctx, x, dy, dx, dx_beta);
  Backend& be = ctx.backend;
  const std::int64_t n = ctx.rows;
  const Tensor xa = adapter_input(ctx, x, false);
  const Tensor ud = extra_scratch(ctx, 0, Shape{n, r_}), v = extra_scratch(ctx, n * r_, Shape{n, out()});
  const Tensor du = du_scratch(ctx);
  // Recomputed rather than kept: v is [rows, out] per module, u only [rows, r].
  be.scale_columns(ud, u_, lambda_d, n, r_);
  be.gemm(false, true, n, out(), r_, 1.0, ud, r_, vera_B(), r_, 0.0, v, out());
  // dλ_b = Σ_rows dy ⊙ v, g = λ_b ⊙ dy (over v, read first)
  be.column_dot_scale(lambda_b_grad, v, dy, v, lambda_b, n, out(), 1.0);
  be.gemm(false, false, n, r_, out(), 1.0, v, out(), vera_B(), r_, 0.0, du, r_);  // d(λ_d ⊙ u) = g B
  // dλ_d = Σ_rows d(λ_d ⊙ u) ⊙ u, du = λ_d ⊙ d(λ_d ⊙ u)
  be.column_dot_scale(lambda_d_grad, du, du, u_, lambda_d, n, r_, 1.0);
  if (!dx.defined()) return;
  const Tensor dxa = input_grad_buffer(ctx, dx);
  be.gemm(false, false, n, in(), r_, 1.0, du, r_, vera_A(), max_in_, 1.0, dxa, in());  // dxa += du A
  finish_input_grad(ctx, dxa, dx);
}

void VeraLinear::merge_into_base(Backend& be, double sign) {
  require_mergeable_base();
  // diag(λ_b) B diag(λ_d) [out, r] for one gemm; a merge happens once per
  // export or inference model, so its small temporary is made here.
  const Tensor scaled = make_tensor(be, Shape{out(), r_}, lambda_b.dtype);
  be.scale_columns(scaled, vera_B().view(0, Shape{out(), r_}), lambda_d, out(), r_);
  be.scale_rows(scaled, scaled, lambda_b, out(), r_);
  be.gemm(false, false, out(), in(), r_, sign, scaled, r_, vera_A(), max_in_, 1.0, weight, in());
}

const VariantDescriptor& vera_variant() {
  static const VariantDescriptor d = [] {
    VariantDescriptor v;
    v.name = "vera";
    v.title = "VeRA";
    v.description =
        "vector-based random matrix adaptation (Kopiczko et al. 2024): one pair of frozen random matrices A, B "
        "shared by every adapted module, and per module only two trained vectors, λ_b (out) and λ_d (r), scaling "
        "B's rows and A's rows; about r + out parameters per module instead of LoRA's r·(in + out), so ranks in the "
        "hundreds stay cheap; with so few trained values it wants a higher learning rate than LoRA (the comparisons here "
        "start it at ten times LoRA's, a guess: pick it on a validation split)";
    v.uses_alpha = false;
    v.options = {
        {kKey, FieldKind::Int, 0, 0, kMaxKey, false, false, static_cast<std::int64_t>(kMaxKey),
         "Projection seed",
         "projection_prng_key: the seed of the shared random A and B (torch.Generator().manual_seed(key), "
         "kaiming-uniform, drawn exactly as PEFT draws them); adapters with the same key and shapes share their "
         "projections"},
        {kSaveProjection, FieldKind::Bool, 1, 0, 1, false, false, 1, "Save projections",
         "save_projection: on, the PEFT file holds A and B (exact anywhere, r·(max in + max out) values more); "
         "off, only the vectors, A and B being drawn again from the seed when loaded"},
        {kDInitial, FieldKind::Float, 0.1, 0, kUnbounded, true, false, 0, "Initial λ_d",
         "d_initial: the value every λ_d starts at (λ_b starts at 0, so training starts at the base); the VeRA "
         "paper recommends 0.1 or less (its Table 6c)"}};
    v.tensors = vera_tensor_table();
    v.attach = attach_vera;
    v.module = vera_module;
    v.peft.type = "VERA";
    v.peft.claims = [](const PeftConfigReader&) { return true; };
    v.peft.read = read_vera_config;
    v.peft.write = write_vera_config;
    v.peft.from_file = vera_from_file;
    v.peft.to_file = vera_to_file;
    v.caps.rank_within_target_shape = false;
    v.caps.composable = false;
    v.caps.not_composable_why =
        "its update diag(λ_b) B diag(λ_d) A is a LoRA, but B and A are slices of the shared projections that the "
        "composer does not read yet";
    // PEFT's forward saves x A (the shared "LoRA u" term) for λ_d's
    // gradient and B (λ_d ⊙ x A) for λ_b's; B and A train not, so nothing
    // else is kept.
    v.eager_terms = {{"VeRA B·(λ_d ⊙ A·x), saved by the λ_b product",
                      [](const EagerModule& m) { return "N·out · " + std::to_string(m.adapter_bytes) + " B"; },
                      [](const AdapterConfig&, const EagerModule& m) { return m.adapter_bytes * m.N * m.out; }}};
    // r = 64, the largest the tiny base's k and v projections (64 x 128)
    // take: VeRA's rank costs only r per module, so it is used high.
    v.compare_arms = {method_arm(
        "vera", "VeRA r=64",
        "ten times LoRA's rate = 3e-2, a guess not tuned on the tiny base: VeRA trains only the scaling vectors d "
        "and b over frozen random projections. The VeRA paper (Kopiczko et al. 2024, arXiv 2310.11454) gives its "
        "rates per task in its appendix tables; those tables could not be checked here, so no rate or ratio of "
        "theirs is quoted and the factor ten is this program's own guess",
        {{"adapter.r", "64"}}, 10)};
    return v;
  }();
  return d;
}

}  // namespace lwb
