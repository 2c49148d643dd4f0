#pragma once
// Gradient-free minimisation of a few weights in a box, as LoRAHub's
// adaptation stage does it: each evaluation is one composed adapter scored on
// a handful of examples, so evaluations are the budget.
//
// Two optimisers behind one call:
//  - COBYLA through NLopt (LN_COBYLA), which is what LoRAHub's nevergrad
//    setting (NGOpt at this size) runs: initial step 0.5, no bounds given to
//    COBYLA; every point is brought into the box by nevergrad's default
//    "bouncing" rule (clip, reflect once off the violated bound, clip again)
//    before it is evaluated, and the trace records the point evaluated.
//  - CMA-ES, what the LoRAHub paper describes: (μ/μ_w, λ)-CMA-ES with
//    Hansen's default parameters (λ = 4 + ⌊3 ln n⌋, μ = ⌊λ/2⌋, log weights,
//    c_c, c_σ, c_1, c_μ, d_σ from "The CMA Evolution Strategy: A Tutorial"),
//    σ0 = the initial step. The box is kept by the same bouncing: samples
//    are drawn unbounded, the bounced point is evaluated, and the update
//    uses the unbounded sample, so the search sees f(bounce(x)) just as
//    nevergrad's parametrisation shows it to every optimiser. (Resampling
//    out-of-box candidates was tried and stalls when the optimum lies on the
//    boundary.) At LoRAHub's budget of 40 CMA-ES runs only a few generations;
//    it needs a few hundred evaluations to converge on smooth functions.
//
// Both evaluate the start point first, so the best result is never worse than
// the start. The search stops at the budget, when cancelled (checked before
// every evaluation), or when COBYLA has converged by NLopt's tolerances (its
// trust region below `xtol` weight units, or an objective that no longer
// moves by `ftol_rel`), says which, and is deterministic for a seed.
#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace lwb::compose {

enum class Optimizer : std::uint8_t { Cobyla, CmaEs };
const char* optimizer_name(Optimizer o);  // "cobyla", "cma-es" (as the store keeps them)
// "cobyla", "cmaes" or "cma-es"; ConfigError("compose.optimizer", ...) otherwise.
Optimizer parse_optimizer(const std::string& s);

struct SearchOptions {
  Optimizer optimizer = Optimizer::Cobyla;
  int budget = 40;  // objective evaluations, the start point included
  double lower = -1.5, upper = 1.5;
  double initial_step = 0.5;  // COBYLA's first step, CMA-ES's σ0
  std::uint64_t seed = 0;     // CMA-ES's samples (COBYLA draws nothing)
  // COBYLA's stopping tolerances (NLopt xtol_abs, ftol_rel): weights closer
  // than 1e-4 compose adapters that score the same to four digits.
  double xtol = 1e-4;
  double ftol_rel = 1e-7;
};

struct Trial {
  int iteration = 0;            // 0-based evaluation count
  std::vector<double> weights;  // the point evaluated (inside the box)
  double objective = 0;
};

struct SearchResult {
  std::vector<double> best_weights;
  double best_objective = 0;
  std::vector<Trial> trace;  // every evaluation, in order
  bool cancelled = false;
  // Why it stopped, for people: "converged: ...", "spent its budget of N
  // evaluations", "cancelled".
  std::string stop_reason;
};

using Objective = std::function<double(std::span<const double> weights)>;
using TrialCallback = std::function<void(const Trial& trial)>;

// Minimises `f` from `start` (clamped into the box). A non-finite objective
// counts as worse than any finite one. Exceptions from `f` or the callback
// end the search and propagate. ConfigError for an empty start, a budget
// below 1 or an empty box.
SearchResult minimize(const Objective& f, std::vector<double> start, const SearchOptions& options,
                      const TrialCallback& on_trial = {}, const std::atomic<bool>* cancel = nullptr);

// nevergrad's "bouncing" bound: clip, reflect once, clip.
double bounce_into_box(double x, double lower, double upper);

}  // namespace lwb::compose
