// The lorahub study: LoRAHub's composition for a task none of its members
// was trained on, against the baselines the LoRAHub paper reports (zero-shot,
// the best single member, and training on the few examples directly). The
// seed draws the few-shot examples and the held-out set (the variance
// LoRAHub's result has in practice); the members are trained once and reused.
#include <algorithm>
#include <cmath>

#include "core/common/errors.h"
#include "core/common/str_printf.h"
#include "core/compose/hub.h"
#include "core/compose/library.h"
#include "core/store/store_sink.h"
#include "core/study/study_internal.h"

namespace lwb::study {

namespace {

constexpr std::int64_t kFewShotSteps = 100;

ComparisonSample score_sample(const std::string& arm, std::uint64_t seed, const compose::Score& s) {
  ComparisonSample x;
  x.arm = arm;
  x.seed = seed;
  x.lr = 0;  // nothing was trained
  x.status = std::isfinite(s.loss) ? "finished" : "failed";
  x.eval_loss = s.loss;
  x.accuracy = s.accuracy;
  return x;
}

// What the few-shot LoRA run ran on, for the report's "what the numbers
// depend on" (the trainer announces it at the start).
struct EnvironmentSink : TrainerSink {
  RunEnvironment environment;
  void on_start(const RunInfo& i) override { environment = i.environment; }
};

}  // namespace

StudyResult lorahub(Context& ctx) {
  compose::HubPreset hub = compose::hub_preset();
  hub.training = ctx.lora("hub-member");
  hub.training.train.steps = compose::hub_preset().training.train.steps;
  hub.training.train.eval_every = 0;
  hub.training.train.eval_examples = 100;
  const compose::SessionOptions& session = hub.session;

  // The few-shot LoRA: the same examples as the composition's few shots and
  // the same held-out set (make_task_dataset with the session's counts and
  // seed, and no validation split, draws exactly the session's).
  auto few_shot_config = [&](std::uint64_t data_seed, std::uint64_t seed) {
    ExperimentConfig c = ctx.lora("lora-" + std::to_string(session.shots) + "-shots");
    c.data.task = hub.target;
    c.data.n_train = session.shots;
    c.data.n_heldout = session.heldout;
    c.data.n_validation = 0;
    c.data.seed = data_seed;
    c.train.steps = std::min(kFewShotSteps, c.train.steps);
    c.train.seed = seed;
    c.train.eval_examples = session.heldout;
    c.schedule.warmup_steps = std::min<std::int64_t>(c.schedule.warmup_steps, c.train.steps / 5);
    return c;
  };
  const ExperimentConfig reference = few_shot_config(session.data_seed, 1);
  const std::string shots = std::to_string(session.shots);
  const std::string lora_arm = "lora-" + shots + "-shots";
  ComparisonDesign design;
  design.preset.name = ctx.info.name;
  design.preset.description = "LoRAHub on held-out task " + hub.target + " from " + shots + " examples vs baselines (base " +
                              ctx.options.base + ")";
  design.preset.entries = {
      {"composition", reference,
       "no training: LoRAHub weights searched on the " + shots + " examples (" +
           compose::optimizer_name(hub.search.optimizer) + ", " + std::to_string(hub.search.budget) + " evaluations)",
       "lorahub"},
      {"zero-shot", reference, "no training: the base alone", "base"},
      {"best-member", reference,
       "no training: the library adapter with the lowest held-out loss (an oracle choice that peeks at held-out "
       "data, so the strictest single-adapter baseline)",
       "member"},
      {lora_arm, reference, "the base's LoRA rate, " + std::to_string(kFewShotSteps) + " steps on the " + shots + " examples", ""},
  };
  design.options = ctx.comparison();
  design.options.pick_lr = false;  // nothing here is tuned on validation data

  compose::HubCallbacks callbacks;
  callbacks.notice = ctx.env.notice;
  // The members train first, for most of the study's time on a real base
  // (minutes each on SmolLM2): the study's progress shows them as its runs.
  callbacks.training_sink = [&](const std::string& adapter, Trainer& trainer, int index, int total) -> TrainerSink* {
    if (!ctx.progress) return nullptr;
    const ComparisonRunTag tag{adapter, kMemberPhase, trainer.config().train.seed, trainer.config().optimizer.lr,
                               index, total};
    return ctx.progress->run_sink(tag, trainer);
  };
  compose::HubReport members;
  const std::vector<std::string> names =
      compose::ensure_hub_members(ctx.store, hub, ctx.env, callbacks, members, ctx.control.stop);

  StudyResult out;
  out.comparison_id = ctx.store.create_comparison(ctx.info.name, "study", design.to_json());
  std::vector<ComparisonSample> samples;
  auto keep = [&](ComparisonSample s) {
    s.id = ctx.store.add_comparison_run(out.comparison_id, s);
    samples.push_back(std::move(s));
  };
  const auto stopped = [&] { return members.cancelled || (ctx.control.stop && ctx.control.stop->load()); };
  try {
    for (int k = 0; k < design.options.seeds && !stopped(); ++k) {
      const std::uint64_t seed = design.options.first_seed + static_cast<std::uint64_t>(k);
      const std::uint64_t data_seed = session.data_seed + seed - 1;
      compose::ComposeRequest request;
      request.name = "study-lorahub-" + std::to_string(out.comparison_id) + "-seed" + std::to_string(seed);
      request.replace = true;
      request.adapters = names;
      request.session = session;
      request.session.data_seed = data_seed;
      request.search = hub.search;
      request.search.seed = seed;
      if (ctx.env.notice)
        ctx.env.notice("seed " + std::to_string(seed) + ": composing " + std::to_string(names.size()) +
                       " adapters for " + hub.target + " from " + shots + " examples");
      const compose::ComposeOutcome composed = compose::compose_and_store(ctx.store, request, ctx.env, {}, ctx.control.stop);
      if (composed.search.cancelled) break;
      const compose::Evaluation& e = composed.evaluation;
      ComparisonSample comp = score_sample("composition", seed, e.composition().heldout);
      comp.measures["composition_id"] = static_cast<double>(composed.composition.id);
      keep(comp);
      keep(score_sample("zero-shot", seed, e.zero_shot().heldout));
      keep(score_sample("best-member", seed, e.best_member().heldout));

      const ExperimentConfig config = few_shot_config(data_seed, seed);
      const ComparisonRunTag tag{lora_arm, "seed", seed, config.optimizer.lr, k + 1, design.options.seeds};
      Trainer trainer(config, ctx.env);
      trainer.prepare(ctx.control);
      StoreSink::Options options;
      options.warning = ctx.env.notice;
      StoreSink recorder(ctx.store, options);
      EnvironmentSink ran_on;
      FanoutSink sinks;
      sinks.add(&recorder);
      sinks.add(&ran_on);
      if (ctx.progress)
        if (TrainerSink* s = ctx.progress->run_sink(tag, trainer)) sinks.add(s);
      const RunResult r = trainer.run(sinks, ctx.control);
      ComparisonSample lora;
      lora.arm = lora_arm;
      lora.seed = seed;
      lora.lr = config.optimizer.lr;
      lora.status = run_status_name(r.status);
      lora.eval_loss = r.final_eval.loss;
      lora.accuracy = r.final_eval.accuracy;
      lora.tokens_per_s = r.tokens_per_s;
      lora.peak_bytes = static_cast<std::int64_t>(r.memory.peak_total);
      lora.trainable_params = trainer.model().trainable_count();
      lora.environment = ran_on.environment;
      if (recorder.run_id() > 0) lora.run_id = recorder.run_id();
      if (ctx.progress) ctx.progress->run_ended(tag, trainer, r, lora);
      keep(lora);
      if (r.status == RunStatus::Stopped) break;
    }
  } catch (const std::exception& e) {
    try {
      ctx.store.finish_comparison(out.comparison_id, "failed", "", {}, e.what());
    } catch (const std::exception&) {  // the rows so far are kept
    }
    throw;
  }
  out.stopped = stopped();
  const ComparisonSummary s = summarize_comparison(design, samples);
  out.report.heading(ctx.info.name + ": " + ctx.info.title + " (base " + ctx.options.base + ")");
  out.report.paragraph("Claim: " + ctx.info.claim);
  out.report.paragraph("Design: " + ctx.info.design + " " + std::to_string(design.options.seeds) +
                       " seed(s); the members (" + std::to_string(names.size()) + " LoRA adapters, " +
                       std::to_string(hub.training.train.steps) + " steps each) were trained once" +
                       (members.trained.empty() ? " earlier and reused" : " for this study") +
                       ", so their own seed variance is not in these intervals.");
  const ArmSummary &comp = arm(s, "composition"), &zero = arm(s, "zero-shot"), &best = arm(s, "best-member"),
                   &lora = arm(s, lora_arm);
  out.key_numbers = {
      "held-out exact match on " + hub.target + ": composition " + interval_text(comp.accuracy, 100, 1, false, "%") +
          ", zero-shot " + interval_text(zero.accuracy, 100, 1, false, "%") + ", best single member " +
          interval_text(best.accuracy, 100, 1, false, "%") + ", LoRA on the " + shots + " examples " +
          interval_text(lora.accuracy, 100, 1, false, "%"),
      "held-out loss: composition " + interval_text(comp.eval_loss, 1, 4) + ", zero-shot " +
          interval_text(zero.eval_loss, 1, 4) + ", best single member " + interval_text(best.eval_loss, 1, 4) +
          ", LoRA on the " + shots + " examples " + interval_text(lora.eval_loss, 1, 4),
  };
  for (const ArmDifference& d : s.differences) {
    out.key_numbers.push_back(difference_verdict(d.arm, d.reference, d.accuracy, "points exact match", 100, 1));
    out.key_numbers.push_back(difference_verdict(d.arm, d.reference, d.eval_loss, "held-out loss", 1, 4));
  }
  PlotSpec loss{"loss.png", "Held-out loss on " + hub.target + " (mean, 95% CI over seeds)", "loss", {}, {{"loss", {}, {}}}, false};
  for (const ArmSummary& a : s.arms) {
    loss.categories.push_back(a.label);
    loss.series[0].values.push_back(a.eval_loss.mean);
    loss.series[0].errors.push_back(a.eval_loss.has_spread() ? a.eval_loss.half_width() : NAN);
  }
  out.plots = {quality_plot(s), loss};
  out.report.paragraph("Results:");
  out.report.bullets(out.key_numbers);
  for (const PlotSpec& p : out.plots) out.report.image(p.file, p.title);
  out.report.append(comparison_report(s));
  return out;
}

}  // namespace lwb::study
