#include "core/compose/search.h"

#include <nlopt.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <numeric>

#include "core/common/errors.h"
#include "core/tensor/rng.h"

// LAPACK from OpenBLAS: eigen-decomposition of CMA-ES's covariance.
extern "C" void dsyev_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w,
                       double* work, const int* lwork, int* info);

namespace lwb::compose {

const char* optimizer_name(Optimizer o) { return o == Optimizer::Cobyla ? "cobyla" : "cma-es"; }

Optimizer parse_optimizer(const std::string& s) {
  if (s == "cobyla") return Optimizer::Cobyla;
  if (s == "cmaes" || s == "cma-es") return Optimizer::CmaEs;
  throw ConfigError("compose.optimizer", "unknown optimizer \"" + s + "\"; expected cobyla or cmaes");
}

double bounce_into_box(double x, double lower, double upper) {
  const double clipped = std::clamp(x, lower, upper);
  return std::clamp(2 * clipped - x, lower, upper);
}

namespace {

// Evaluations, the trace, the best point, the budget and cancellation, shared
// by both optimisers.
class Evaluator {
 public:
  Evaluator(const Objective& f, const SearchOptions& o, const TrialCallback& cb, const std::atomic<bool>* cancel)
      : f_(f), options_(o), on_trial_(cb), cancel_(cancel) {}

  // False when the budget is spent or the search was cancelled.
  bool can_evaluate() {
    if (cancel_ && cancel_->load()) result_.cancelled = true;
    return !result_.cancelled && static_cast<int>(result_.trace.size()) < options_.budget;
  }

  // Evaluates an in-box point; returns the objective the optimiser sees.
  double operator()(std::span<const double> w) {
    Trial t;
    t.iteration = static_cast<int>(result_.trace.size());
    t.weights.assign(w.begin(), w.end());
    t.objective = f_(w);
    const bool better = std::isfinite(t.objective) &&
                        (result_.best_weights.empty() || t.objective < result_.best_objective);
    if (better) {
      result_.best_weights = t.weights;
      result_.best_objective = t.objective;
    }
    result_.trace.push_back(t);
    if (on_trial_) on_trial_(result_.trace.back());
    return std::isfinite(t.objective) ? t.objective : std::numeric_limits<double>::max();
  }

  SearchResult finish(std::span<const double> start) {
    if (result_.best_weights.empty()) {  // nothing finite was seen
      result_.best_weights.assign(start.begin(), start.end());
      result_.best_objective = result_.trace.empty() ? NAN : result_.trace.front().objective;
    }
    return std::move(result_);
  }

 private:
  const Objective& f_;
  const SearchOptions& options_;
  const TrialCallback& on_trial_;
  const std::atomic<bool>* cancel_;
  SearchResult result_;
};

struct CobylaData {
  Evaluator* eval;
  const SearchOptions* options;
  nlopt_opt opt;
  std::vector<double> folded;
  std::exception_ptr error;
};

double cobyla_objective(unsigned n, const double* x, double*, void* data) {
  auto& d = *static_cast<CobylaData*>(data);
  // Exceptions must not cross NLopt's C frames: keep it and stop the run.
  try {
    if (!d.eval->can_evaluate()) {
      nlopt_force_stop(d.opt);
      return 0;
    }
    for (unsigned i = 0; i < n; ++i) d.folded[i] = bounce_into_box(x[i], d.options->lower, d.options->upper);
    return (*d.eval)(d.folded);
  } catch (...) {
    d.error = std::current_exception();
    nlopt_force_stop(d.opt);
    return 0;
  }
}

// Why COBYLA stopped, from its result code; empty when the budget or a
// cancellation (which the evaluator knows best) ended it.
std::string cobyla_stop_reason(nlopt_result r, const SearchOptions& o) {
  char buf[160];
  switch (r) {
    case NLOPT_XTOL_REACHED:
      std::snprintf(buf, sizeof buf, "converged: its steps fell below %g weight units (xtol)", o.xtol);
      return buf;
    case NLOPT_FTOL_REACHED:
      std::snprintf(buf, sizeof buf, "converged: the objective changed by less than %g of itself (ftol)", o.ftol_rel);
      return buf;
    case NLOPT_ROUNDOFF_LIMITED: return "converged to the round-off limit";
    default: return {};
  }
}

std::string run_cobyla(Evaluator& eval, const std::vector<double>& start, const SearchOptions& o) {
  const unsigned n = static_cast<unsigned>(start.size());
  nlopt_opt opt = nlopt_create(NLOPT_LN_COBYLA, n);
  if (!opt) throw Error("NLopt could not create a COBYLA optimiser for " + std::to_string(n) + " weights");
  CobylaData data{&eval, &o, opt, std::vector<double>(n), nullptr};
  nlopt_set_min_objective(opt, cobyla_objective, &data);
  nlopt_set_initial_step1(opt, o.initial_step);
  nlopt_set_maxeval(opt, o.budget);
  // Without a tolerance NLopt's COBYLA shrinks its trust region towards zero
  // and spends the whole budget around a point it has already found (or
  // loops without evaluating, seen in 4 dimensions).
  nlopt_set_xtol_abs1(opt, o.xtol);
  nlopt_set_ftol_rel(opt, o.ftol_rel);
  std::vector<double> x = start;
  double fx = 0;
  const nlopt_result r = nlopt_optimize(opt, x.data(), &fx);
  nlopt_destroy(opt);
  if (data.error) std::rethrow_exception(data.error);
  // Running out of budget, hitting the round-off limit or being stopped all
  // leave a valid best point; anything else is a failure of the setup.
  if (r == NLOPT_FAILURE || r == NLOPT_INVALID_ARGS || r == NLOPT_OUT_OF_MEMORY)
    throw Error("NLopt COBYLA failed with code " + std::to_string(static_cast<int>(r)));
  return cobyla_stop_reason(r, o);
}

class Normal {
 public:
  explicit Normal(std::uint64_t seed) : rng_(seed) {}
  // Box-Muller on SplitMix: the same numbers on every platform.
  double operator()() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = 1.0 - rng_.uniform(), u2 = rng_.uniform();
    const double r = std::sqrt(-2.0 * std::log(u1)), a = 2.0 * M_PI * u2;
    spare_ = r * std::sin(a);
    has_spare_ = true;
    return r * std::cos(a);
  }

 private:
  SplitMix rng_;
  double spare_ = 0;
  bool has_spare_ = false;
};

// C = B diag(d²) Bᵀ; B column-major (column j is eigenvector j), d = sqrt(eigenvalues).
void eigen(const std::vector<double>& C, int n, std::vector<double>& B, std::vector<double>& d) {
  B = C;
  std::vector<double> ev(static_cast<std::size_t>(n));
  int lwork = -1, info = 0;
  double query = 0;
  dsyev_("V", "U", &n, B.data(), &n, ev.data(), &query, &lwork, &info);
  lwork = std::max(1, static_cast<int>(query));
  std::vector<double> work(static_cast<std::size_t>(lwork));
  dsyev_("V", "U", &n, B.data(), &n, ev.data(), work.data(), &lwork, &info);
  if (info != 0) throw Error("CMA-ES: LAPACK dsyev did not converge (info " + std::to_string(info) + ")");
  d.resize(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) d[i] = std::sqrt(std::max(ev[i], 1e-30));
}

void run_cmaes(Evaluator& eval, const std::vector<double>& start, const SearchOptions& o) {
  const int n = static_cast<int>(start.size());
  const auto N = static_cast<std::size_t>(n);
  const int lambda = 4 + static_cast<int>(std::floor(3 * std::log(n)));
  const int mu = lambda / 2;
  std::vector<double> weights(static_cast<std::size_t>(mu));
  for (int i = 0; i < mu; ++i) weights[i] = std::log((lambda + 1) / 2.0) - std::log(i + 1.0);
  const double wsum = std::accumulate(weights.begin(), weights.end(), 0.0);
  double wsq = 0;
  for (double& w : weights) {
    w /= wsum;
    wsq += w * w;
  }
  const double mueff = 1 / wsq;
  const double cc = (4 + mueff / n) / (n + 4 + 2 * mueff / n);
  const double cs = (mueff + 2) / (n + mueff + 5);
  const double c1 = 2 / ((n + 1.3) * (n + 1.3) + mueff);
  const double cmu = std::min(1 - c1, 2 * (mueff - 2 + 1 / mueff) / ((n + 2) * (n + 2) + mueff));
  const double damps = 1 + 2 * std::max(0.0, std::sqrt((mueff - 1) / (n + 1)) - 1) + cs;
  const double chin = std::sqrt(n) * (1 - 1.0 / (4 * n) + 1.0 / (21.0 * n * n));

  std::vector<double> mean = start, pc(N, 0), ps(N, 0), C(N * N, 0), B, d;
  for (int i = 0; i < n; ++i) C[i * N + i] = 1;
  double sigma = o.initial_step;
  Normal normal(o.seed);
  std::vector<std::vector<double>> y(static_cast<std::size_t>(lambda), std::vector<double>(N));
  std::vector<std::vector<double>> x(static_cast<std::size_t>(lambda), std::vector<double>(N));
  std::vector<double> fx(static_cast<std::size_t>(lambda)), z(N);
  std::vector<int> order(static_cast<std::size_t>(lambda));

  if (!eval.can_evaluate()) return;
  eval(mean);
  for (int gen = 1;; ++gen) {
    eigen(C, n, B, d);
    for (int k = 0; k < lambda; ++k) {
      if (!eval.can_evaluate()) return;  // a partial last generation updates nothing
      for (double& v : z) v = normal();
      for (int i = 0; i < n; ++i) {
        double v = 0;
        for (int j = 0; j < n; ++j) v += B[j * N + i] * d[j] * z[j];
        y[k][i] = v;
        x[k][i] = bounce_into_box(mean[i] + sigma * v, o.lower, o.upper);
      }
      fx[k] = eval(x[k]);
    }
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return fx[a] < fx[b]; });

    std::vector<double> yw(N, 0);
    for (int i = 0; i < mu; ++i)
      for (int j = 0; j < n; ++j) yw[j] += weights[i] * y[order[i]][j];
    for (int j = 0; j < n; ++j) mean[j] += sigma * yw[j];
    // C^(-1/2) yw = B diag(1/d) Bᵀ yw
    std::vector<double> t(N, 0), cinv_yw(N, 0);
    for (int j = 0; j < n; ++j) {
      for (int i = 0; i < n; ++i) t[j] += B[j * N + i] * yw[i];
      t[j] /= d[j];
    }
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) cinv_yw[i] += B[j * N + i] * t[j];
    const double ks = std::sqrt(cs * (2 - cs) * mueff);
    double ps_norm = 0;
    for (int i = 0; i < n; ++i) {
      ps[i] = (1 - cs) * ps[i] + ks * cinv_yw[i];
      ps_norm += ps[i] * ps[i];
    }
    ps_norm = std::sqrt(ps_norm);
    const bool hs = ps_norm / std::sqrt(1 - std::pow(1 - cs, 2.0 * gen)) < (1.4 + 2.0 / (n + 1)) * chin;
    const double kc = std::sqrt(cc * (2 - cc) * mueff);
    for (int i = 0; i < n; ++i) pc[i] = (1 - cc) * pc[i] + (hs ? kc * yw[i] : 0);
    const double decay = 1 - c1 - cmu + (hs ? 0 : c1 * cc * (2 - cc));
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) {
        double rank_mu = 0;
        for (int k = 0; k < mu; ++k) rank_mu += weights[k] * y[order[k]][i] * y[order[k]][j];
        C[i * N + j] = decay * C[i * N + j] + c1 * pc[i] * pc[j] + cmu * rank_mu;
      }
    sigma *= std::exp(cs / damps * (ps_norm / chin - 1));
  }
}

}  // namespace

SearchResult minimize(const Objective& f, std::vector<double> start, const SearchOptions& options,
                      const TrialCallback& on_trial, const std::atomic<bool>* cancel) {
  if (start.empty()) throw ConfigError("compose.adapters", "nothing to search: no weights");
  if (options.budget < 1)
    throw ConfigError("compose.budget", "must be at least 1, got " + std::to_string(options.budget));
  if (!(options.lower < options.upper))
    throw ConfigError("compose.bounds", "the lower bound must be below the upper bound");
  if (!(options.initial_step > 0)) throw ConfigError("compose.initial_step", "must be positive");
  for (double& w : start) w = std::clamp(w, options.lower, options.upper);
  if (!(options.xtol > 0) || !(options.ftol_rel >= 0))
    throw ConfigError("compose.tolerance", "xtol must be positive and ftol_rel not negative");
  Evaluator eval(f, options, on_trial, cancel);
  std::string converged;
  if (options.optimizer == Optimizer::Cobyla)
    converged = run_cobyla(eval, start, options);
  else
    run_cmaes(eval, start, options);
  SearchResult r = eval.finish(start);
  r.stop_reason = r.cancelled                                            ? "cancelled"
                  : static_cast<int>(r.trace.size()) >= options.budget  ? "spent its budget of " +
                                                                             std::to_string(options.budget) +
                                                                             " evaluations"
                  : !converged.empty()                                  ? converged
                                                                        : "stopped";
  return r;
}

}  // namespace lwb::compose
