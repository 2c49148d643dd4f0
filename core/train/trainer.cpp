#include "core/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "core/adapters/attach.h"
#include "core/adapters/descriptor.h"
#include "core/common/errors.h"
#include "core/common/integers.h"
#include "core/common/kill_point.h"
#include "core/cpu/cpu_backend.h"
#include "core/cpu/cpu_share.h"
#include "core/data/tasks.h"
#include "core/format/safetensors.h"
#include "core/model/checkpoint.h"
#include "core/model/weights_init.h"
#include "core/optim/schedule.h"
#include "core/backend/backend_registry.h"
#include "core/tensor/rng.h"
#include "core/common/paths.h"
#include "core/source/base_cache.h"
#include "core/train/data_setup.h"
#include "core/train/divergence.h"
#include "core/train/step_stats.h"
#include "core/train/training_samples.h"

namespace lwb {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

const char* run_status_name(RunStatus s) {
  switch (s) {
    case RunStatus::Finished: return "finished";
    case RunStatus::Stopped: return "stopped";
    case RunStatus::Failed: return "failed";
    case RunStatus::Diverged: return "diverged";
  }
  return "?";
}

Trainer::Trainer(ExperimentConfig config, TrainerEnvironment env)
    : config_(std::move(config)), env_(std::move(env)) {
  if (env_.data_dir.empty()) env_.data_dir = user_data_dir();
}

Trainer::~Trainer() {
  // The optimiser and model hold storages that the backend must free.
  sampler_.reset();
  variant_.reset();
  optimizer_.reset();
  model_.reset();
}

std::uint64_t Trainer::step_seed(std::int64_t step) const {
  return derive_seed(config_.train.seed, 1000 + static_cast<std::uint64_t>(step));
}

void Trainer::load_data(const DataSetup& setup) {
  dataset_ = load_experiment_data(config_, setup);
  if (env_.notice)
    for (const std::string& note : dataset_.notes) env_.notice(note);
  if (config_.train.eval_split == "validation") {
    // The test split is dropped here, so nothing this run evaluates, reports
    // or chooses can depend on it.
    dataset_.heldout = std::move(dataset_.validation);
    dataset_.validation.clear();
  }
  if (dataset_.train.empty()) throw DataError(dataset_.name + ": no training examples");
  if (dataset_.heldout.empty())
    throw DataError(dataset_.name + (config_.train.eval_split == "validation" ? ": no validation examples"
                                                                              : ": no held-out examples"));
}

void Trainer::load_base_into(Model& model, const RunControl& control) {
  if (source_.random) {
    model.init_base_weights(derive_seed(config_.train.seed, 3));
    return;
  }
  ResolvedSource source = source_;
  if (source.kind == SourceKind::Builtin) source.path = ensure_base_model(source.preset, env_, control);
  load_weights(model, source);
}

void Trainer::load_base(const RunControl& control) {
  if (model_->frozen_linear_dtype() != DType::BF16) {
    load_base_into(*model_, control);
    base_fingerprint_ = lwb::base_fingerprint(*model_);
    return;
  }
  // bf16 frozen weights: the base is read in fp32 into a host copy, which
  // the model's weights are rounded from (as torch's .to(bfloat16) after
  // loading). The fingerprint is the fp32 base's, so the adapter belongs to
  // the same base as fp32-trained ones (LoRAHub, merged export compare it).
  CpuBackend host;
  MemoryLedger host_ledger;
  Model fp32(model_->config(), Model::Mode::Frozen);
  fp32.materialize(host, host_ledger, 1, 1);
  load_base_into(fp32, control);
  base_fingerprint_ = lwb::base_fingerprint(fp32);
  copy_base_weights(fp32, *model_);
}

void Trainer::prepare(const RunControl& control) {
  if (prepared_) return;
  config_.validate();
  // The model's shape, tokenizer and chat template come from its source.
  DataSetup setup = make_data_setup(config_, env_.data_folder());
  source_ = setup.source;
  const ModelConfig& mc = source_.config;
  config_.adapter.validate(mc, config_.train.steps, config_.schedule.warmup_steps);
  if (config_.train.seq_len > mc.max_seq)
    throw ConfigError("train.seq_len", "sequence length " + std::to_string(config_.train.seq_len) +
                                           " exceeds the maximum of " + std::to_string(mc.max_seq) + " of the " +
                                           source_.describe());
  std::string note;
  backend_ = make_backend(config_.train.device, &note);
  if (!note.empty() && env_.notice) env_.notice(note);

  load_data(setup);
  tokenizer_ = std::move(setup.tokenizer);
  pad_id_ = data::batch_pad_id(*tokenizer_);

  const bool bf16_frozen = config_.model.frozen_dtype == "bf16";
  if (bf16_frozen && !config_.adapter.is_adapter() && env_.notice)
    env_.notice("model.frozen_dtype = bf16 does not apply to full fine-tuning, which trains every base "
                "weight in fp32; keeping fp32");
  const std::optional<DType> frozen_dtype =
      bf16_frozen && config_.adapter.is_adapter() ? std::optional(DType::BF16) : std::nullopt;
  model_ = std::make_unique<Model>(mc, model_mode_for(config_.adapter), DType::F32, frozen_dtype);
  attach_adapters(*model_, config_.adapter);
  model_->materialize(*backend_, ledger_, config_.train.batch, config_.train.seq_len);
  load_base(control);
  model_->init_adapters(derive_seed(config_.train.seed, 2));
  optimizer_ = std::make_unique<AdamW>(model_->trainable(), config_.optimizer);
  optimizer_->materialize(*backend_, ledger_);
  variant_ = make_variant_controller(config_.adapter, config_.schedule, config_.optimizer.lr, config_.train.steps,
                                     config_.train.seed);
  if (variant_) variant_->attach(*model_, *optimizer_, ledger_);
  evaluator_ = std::make_unique<Evaluator>(*model_, pad_id_);
  sampler_ = std::make_unique<data::BatchSampler>(dataset_.train, config_.train.batch,
                                                  config_.train.seq_len, pad_id_,
                                                  derive_seed(config_.train.seed, 1));
  if (config_.train.samples > 0)
    samples_ = std::make_unique<TrainingSampler>(*model_, config_.adapter, *tokenizer_, dataset_.heldout,
                                                 config_.train, ledger_);
  prepared_ = true;
}

EvalResult Trainer::evaluate(int max_examples) {
  kill_point("evaluation");
  const auto& held = dataset_.heldout;
  const std::size_t n = std::min(static_cast<std::size_t>(std::max(max_examples, 0)), held.size());
  return evaluator_->score(std::span(held).first(n), dataset_.has_completions);
}

void Trainer::save_state_for_resume() {
  try {
    std::filesystem::create_directories(state_file_.parent_path());
    save_state(state_file_);
  } catch (const std::exception& e) {
    if (env_.notice) env_.notice(std::string("could not save the resumable state: ") + e.what() + "; training goes on");
  }
}

RunResult Trainer::run(TrainerSink& sink, const RunControl& control) {
  prepare(control);
  std::optional<CpuShare> share;
  if (backend_->device().kind == DeviceKind::Cpu) {
    share.emplace();
    // Fixed for the whole run, as the losses depend on it: what the config
    // asks, what the run being resumed used, or this run's share of the CPU.
    const int wanted = config_.train.threads > 0 ? config_.train.threads
                       : resumed_threads_ > 0    ? resumed_threads_
                                                 : share->fair_share();
    threads_ = share->use(wanted);
  }
  const auto t0 = Clock::now();
  RunInfo info;
  info.config = config_;
  info.backend = backend_->name();
  info.dataset = dataset_.name;
  info.train_examples = static_cast<std::int64_t>(dataset_.train.size());
  info.heldout_examples = static_cast<std::int64_t>(dataset_.heldout.size());
  info.trainable_params = model_->trainable_count();
  info.model_params = model_->config().param_count();
  info.base_fingerprint = base_fingerprint_;
  info.memory = ledger_.snapshot();
  info.environment = current_environment(backend_->name(), threads_);
  info.eval_split = config_.train.eval_split;
  sink.on_start(info);

  RunResult result;
  result.status = RunStatus::Finished;
  const std::int64_t total = config_.train.steps;
  const int eval_every = config_.train.eval_every;
  const TrainConfig& tc = config_.train;
  const bool keep_state = !state_file_.empty() && config_.adapter.variant().caps.resumable;
  auto last_state = Clock::now();
  DivergenceGuard guard(tc.divergence_factor, tc.collapse_steps);
  StepStats stats(model_->config().layers);
  double train_seconds = 0;
  std::int64_t tokens = 0;
  std::uint64_t ledger_version = 0;
  auto stopped = [&] { return control.stop && control.stop->load(); };
  auto diverged = [&](std::int64_t step, const std::string& why) {
    result.status = RunStatus::Diverged;
    result.error = "diverged at step " + std::to_string(step) + ": " + why;
  };
  try {
    for (std::int64_t step = steps_done_; step < total; ++step) {
      while (control.pause && control.pause->load() && !stopped())
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (stopped()) {
        result.status = RunStatus::Stopped;
        break;
      }
      const auto ts = Clock::now();
      const std::uint64_t seed = step_seed(step);
      StepEvent ev;
      if (variant_) variant_->before_step(step, ev.variant_events);
      sampler_->next(batch_);
      data::trim_padding(batch_, pad_id_);
      model_->set_batch(batch_.inputs.data(), batch_.targets.data(), batch_.B, batch_.T);
      backend_->fill(model_->trainable().grads().flat(), 0.0);
      model_->forward(true, seed);
      double loss = model_->loss(batch_.n_targets, true);
      // Checked before the update, so the weights stay those of the last sound step.
      if (const std::string why = DivergenceGuard::non_finite("the loss", loss); !why.empty()) {
        diverged(step + 1, why);
        break;
      }
      model_->backward(seed);
      if (variant_) loss += variant_->regularize();
      const double norm = optimizer_->grad_norm(*backend_);
      if (const std::string why = DivergenceGuard::non_finite("the gradient norm", norm); !why.empty()) {
        diverged(step + 1, why);
        break;
      }
      double lr = learning_rate(config_.schedule, config_.optimizer.lr, step, total);
      if (variant_) lr = variant_->learning_rate(step, lr);
      const double clip = optimizer_->step(*backend_, lr, norm);
      if (variant_) variant_->after_step(step, clip, ev.variant_events);
      backend_->synchronize();
      train_seconds += seconds_since(ts);
      tokens += static_cast<std::int64_t>(batch_.B) * batch_.T;
      steps_done_ = step + 1;

      ev.step = steps_done_;
      ev.total_steps = total;
      ev.loss = loss;
      ev.lr = lr;
      ev.grad_norm = norm;
      ev.tokens_per_s = train_seconds > 0 ? tokens / train_seconds : 0;
      result.final_train_loss = loss;
      if ((eval_every > 0 && steps_done_ % eval_every == 0) || steps_done_ == total) {
        ev.eval = evaluate(config_.train.eval_examples);
        result.final_eval = *ev.eval;
      }
      if (samples_ && samples_->due(steps_done_, total)) samples_->sample(ev.samples, control.stop);
      // The weights' spread where the held-out scores are, and at the first step to compare with.
      if (ev.eval || steps_done_ == 1)
        ev.variant_events.push_back(stats.weight_histogram(*backend_, model_->trainable().params(), steps_done_));
      if (steps_done_ % 10 == 1 || steps_done_ == total) {
        ev.device_total_bytes = static_cast<double>(backend_->device_total_bytes());
        ev.device_used_bytes = ev.device_total_bytes - static_cast<double>(backend_->device_free_bytes());
        stats.layer_grad_norms(*backend_, model_->trainable().grads(), ev.layer_grad_norms);
      }
      if (ledger_.version() != ledger_version) {
        ledger_version = ledger_.version();
        ev.memory = ledger_.snapshot();
      }
      ev.elapsed_s = seconds_since(t0);
      sink.on_step(ev);
      if (const std::string why = guard.after_step(loss, norm); !why.empty()) {
        diverged(steps_done_, why);
        break;
      }
      if (keep_state && steps_done_ < total &&
          ((tc.state_every_steps > 0 && steps_done_ % tc.state_every_steps == 0) ||
           (tc.state_every_minutes > 0 && seconds_since(last_state) >= 60 * tc.state_every_minutes))) {
        save_state_for_resume();
        last_state = Clock::now();
      }
    }
    if (result.status != RunStatus::Finished || std::isnan(result.final_eval.loss))
      result.final_eval = evaluate(config_.train.eval_examples);
  } catch (const std::exception& e) {
    result.status = RunStatus::Failed;
    result.error = e.what();
  }
  if (keep_state && result.status == RunStatus::Stopped) save_state_for_resume();
  if (variant_ && result.status != RunStatus::Failed) {
    try {
      result.summary = variant_->summary();
    } catch (const std::exception& e) {
      result.error = std::string("the variant's summary failed: ") + e.what();
    }
  }
  result.steps_done = steps_done_;
  result.elapsed_s = seconds_since(t0);
  result.tokens_per_s = train_seconds > 0 ? tokens / train_seconds : 0;
  result.memory = ledger_.snapshot();
  sink.on_finish(result);
  return result;
}

namespace {

// The pretraining config plus the corpus generator's version: a cached base
// made by another recipe is rebuilt rather than silently reused. Only the
// settings pretraining depends on: adding an unrelated config key must not
// invalidate every cached base.
std::string recipe_of(const ExperimentConfig& c) {
  std::string text = "corpus v" + std::to_string(data::kPretrainCorpusVersion);
  // Keys that play no part: model.frozen_dtype (pretraining is full
  // fine-tuning), when state is saved, the divergence guards, the CPU threads.
  // data.n_validation and train.eval_split: pretraining keeps their defaults.
  // Nor the settings of instruction data and chat models (pretraining reads
  // the generic corpus with the preset's own tokenizer).
  static const std::set<std::string> ignored = {
      "name", "model.frozen_dtype", "data.n_validation", "train.eval_split", "train.state_every_steps",
      "train.state_every_minutes", "train.divergence_factor", "train.collapse_steps", "train.threads",
      "train.samples", "train.sample_every", "train.sample_max_new", "train.sample_greedy",
      "model.tokenizer", "model.chat_template", "data.format", "data.loss_on", "data.overlong"};
  for (const std::string& key : ExperimentConfig::keys())
    if (key.rfind("adapter.", 0) != 0 && !ignored.contains(key)) text += "|" + key + "=" + c.get(key);
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : text) h = (h ^ ch) * 1099511628211ull;
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

bool has_pretraining(const std::string& preset) {
  const std::vector<std::string> names = experiment_preset_names();
  return std::find(names.begin(), names.end(), "pretrain-" + preset) != names.end();
}

}  // namespace

std::string pretrain_recipe(const std::string& preset) { return recipe_of(experiment_preset("pretrain-" + preset)); }

bool base_model_ready(const std::string& preset, const std::filesystem::path& data_dir) {
  return cached_base_state(cached_base_path(data_dir.empty() ? user_data_dir() : data_dir, preset),
                           pretrain_recipe(preset)) == CachedBaseState::Ready;
}

bool is_base_pretraining(const ExperimentConfig& config) {
  return config.data.kind == "pretrain" && has_pretraining(config.model.preset) &&
         recipe_of(config) == pretrain_recipe(config.model.preset);
}

std::filesystem::path save_pretrained_base(Trainer& trainer, const RunResult& r, const std::filesystem::path& data_dir) {
  const ExperimentConfig& c = trainer.config();
  if (!is_base_pretraining(c))
    throw ConfigError("data.kind", "run \"" + c.name + "\" is not the pretraining of the " + c.model.preset +
                                       " base; only that run's model can become the cached base");
  if (r.status != RunStatus::Finished)
    throw Error("pretraining the " + c.model.preset + " base " + run_status_name(r.status) +
                (r.error.empty() ? "" : ": " + r.error) + "; nothing was saved");
  const std::filesystem::path path = cached_base_path(data_dir.empty() ? user_data_dir() : data_dir, c.model.preset);
  std::ostringstream loss;
  loss << r.final_eval.loss;
  store_cached_base(trainer.model(), path, c.model.preset, pretrain_recipe(c.model.preset),
                    {{"lwb.pretrain_heldout_loss", loss.str()}, {"lwb.pretrain_steps", std::to_string(r.steps_done)}});
  return path;
}

namespace {

void require_resumable(const AdapterConfig& a) {
  const VariantDescriptor& v = a.variant();
  if (!v.caps.resumable)
    throw ConfigError("adapter.method", "resuming is not available for " + v.title + " runs (" +
                                            v.caps.not_resumable_why + "); clone the run instead");
}

// "param:<slot>" etc.: the slot index keeps names unique and stable.
std::string state_key(const char* kind, std::size_t slot) { return std::string(kind) + ":" + std::to_string(slot); }

}  // namespace

AdapterState Trainer::adapter_state() const {
  AdapterState s = extract_adapter(*model_, config_.adapter, source_.base_model_name,
                                   base_fingerprint_);
  if (variant_) variant_->finish_adapter_state(s);
  return s;
}

void Trainer::save_state(const std::filesystem::path& file) {
  require_resumable(config_.adapter);
  const TensorArena* arenas[3] = {&model_->trainable().params(), &optimizer_->exp_avg(), &optimizer_->exp_avg_sq()};
  const char* kinds[3] = {"param", "exp_avg", "exp_avg_sq"};
  std::vector<std::vector<float>> host;
  std::vector<io::StTensorWrite> tensors;
  const std::size_t slots = arenas[0]->entries().size();
  host.reserve(3 * slots);
  for (int a = 0; a < 3; ++a)
    for (std::size_t i = 0; i < slots; ++i) {
      const Tensor t = arenas[a]->slot_tensor(i);
      const std::vector<double> v = download_values(*backend_, t);
      host.emplace_back(v.begin(), v.end());
      tensors.push_back({state_key(kinds[a], i), io::StDType::F32, {t.numel()},
                         std::as_bytes(std::span<const float>(host.back()))});
    }
  io::write_safetensors(file, std::move(tensors),
                        {{"lwb.steps_done", std::to_string(steps_done_)},
                         {"lwb.optimizer_steps", std::to_string(optimizer_->steps_taken())},
                         {"lwb.config", config_.to_json(-1)},
                         {"lwb.base_fingerprint", base_fingerprint_},
                         {"lwb.threads", std::to_string(threads_)}});
}

void Trainer::resume(const std::filesystem::path& file) {
  require_resumable(config_.adapter);
  prepare();
  const io::SafetensorsFile st = io::SafetensorsFile::open(file);
  const auto meta = [&](const char* key) {
    const auto it = st.metadata().find(key);
    if (it == st.metadata().end()) throw FormatError(file.string(), std::string("not a run state: no ") + key);
    return it->second;
  };
  if (meta("lwb.base_fingerprint") != base_fingerprint_)
    throw FormatError(file.string(), "the state was trained on another base model (fingerprint " +
                                         meta("lwb.base_fingerprint") + ", this base is " + base_fingerprint_ + ")");
  const TensorArena* arenas[3] = {&model_->trainable().params(), &optimizer_->exp_avg(), &optimizer_->exp_avg_sq()};
  const char* kinds[3] = {"param", "exp_avg", "exp_avg_sq"};
  for (int a = 0; a < 3; ++a)
    for (std::size_t i = 0; i < arenas[a]->entries().size(); ++i) {
      const Tensor t = arenas[a]->slot_tensor(i);
      std::vector<float> v(static_cast<std::size_t>(t.numel()));
      st.read_f32_into(state_key(kinds[a], i), v);
      upload_floats(*backend_, t, v);
    }
  const auto meta_integer = [&](const char* key, std::int64_t hi) {
    const std::optional<std::int64_t> v = parse_integer<std::int64_t>(meta(key), 0, hi);
    if (!v)
      throw FormatError(file.string(), std::string(key) + " is \"" + meta(key) + "\"; expected " +
                                           integer_range_text<std::int64_t>(0, hi));
    return *v;
  };
  const std::int64_t done = meta_integer("lwb.steps_done", config_.train.steps);
  optimizer_->set_steps_taken(meta_integer("lwb.optimizer_steps", std::numeric_limits<std::int64_t>::max()));
  // The same CPU threads as before (0: not on the CPU, or a state from before threads were recorded).
  if (st.metadata().contains("lwb.threads"))
    resumed_threads_ = static_cast<int>(meta_integer("lwb.threads", std::numeric_limits<int>::max()));
  // The sampler is deterministic: replaying its draws puts it where it was.
  for (std::int64_t s = steps_done_; s < done; ++s) sampler_->next(batch_);
  steps_done_ = done;
}

std::filesystem::path TrainerEnvironment::builtin_base(const std::string& preset) const {
  return ensure_base_model(preset, *this);
}

std::filesystem::path ensure_base_model(const std::string& preset, const TrainerEnvironment& env,
                                        const RunControl& control) {
  const std::filesystem::path path = cached_base_path(env.data_folder(), preset);
  switch (cached_base_state(path, pretrain_recipe(preset))) {
    case CachedBaseState::Ready: return path;
    case CachedBaseState::OtherRecipe:
      if (env.notice) env.notice("the cached " + preset + " base at " + path.string() +
                                 " was made by another recipe; pretraining it again");
      break;
    case CachedBaseState::Missing:
      if (env.notice) env.notice("no pretrained " + preset + " base at " + path.string() + "; pretraining it now");
      break;
  }
  return pretrain_base_model(preset, env, control);
}

std::filesystem::path pretrain_base_model(const std::string& preset, const TrainerEnvironment& env,
                                          const RunControl& control) {
  const std::filesystem::path dir = env.data_folder();
  TrainerEnvironment inner = env;
  inner.data_dir = dir;
  Trainer trainer(experiment_preset("pretrain-" + preset), inner);
  TrainerSink none;
  const RunResult r = trainer.run(env.pretrain_sink ? *env.pretrain_sink : none, control);
  return save_pretrained_base(trainer, r, dir);
}

}  // namespace lwb
