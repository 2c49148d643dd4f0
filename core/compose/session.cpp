#include "core/compose/session.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/adapters/attach.h"
#include "core/data/tasks.h"
#include "core/data/tokenizer.h"
#include "core/model/checkpoint.h"
#include "core/backend/backend_registry.h"

namespace lwb::compose {

using json = nlohmann::json;

const char* score_kind_name(ScoreRow::Kind k) {
  switch (k) {
    case ScoreRow::Kind::ZeroShot: return "zero-shot";
    case ScoreRow::Kind::Member: return "member";
    case ScoreRow::Kind::Composition: return "composition";
  }
  return "?";
}

const ScoreRow& Evaluation::best_member() const {
  const ScoreRow* best = nullptr;
  // A member that scores NaN is no candidate (NaN compares false with everything).
  for (const ScoreRow& r : rows)
    if (r.kind == ScoreRow::Kind::Member && std::isfinite(r.heldout.loss) && (!best || r.heldout.loss < best->heldout.loss))
      best = &r;
  if (!best) throw Error("evaluation of task " + task + " has no member with a finite held-out loss");
  return *best;
}

namespace {

// "-9.7303, better" / "+0.0 points, the same"; accuracy differences in points.
std::string change(double delta, bool accuracy) {
  if (!std::isfinite(delta)) return "-";
  char buf[48];
  const bool better = accuracy ? delta > 0 : delta < 0;
  const char* verdict = delta == 0 ? "the same" : better ? "better" : "worse";
  if (accuracy)
    std::snprintf(buf, sizeof(buf), "%+.1f points, %s", 100 * delta, verdict);
  else
    std::snprintf(buf, sizeof(buf), "%+.4f, %s", delta, verdict);
  return buf;
}

}  // namespace

std::string percent_text(double fraction) {
  if (!std::isfinite(fraction)) return "-";
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%.1f%%", 100 * fraction);
  return buf;
}

std::vector<std::string> evaluation_summary(const Evaluation& e) {
  const ScoreRow& zero = e.zero_shot();
  const ScoreRow& comp = e.composition();
  const ScoreRow& best = e.best_member();
  char line[512];
  std::vector<std::string> lines;
  std::snprintf(line, sizeof(line), "best single member: %s (held-out loss %.4f, exact match %s)", best.label.c_str(),
                best.heldout.loss, percent_text(best.heldout.accuracy).c_str());
  lines.emplace_back(line);
  std::snprintf(line, sizeof(line),
                "composition vs zero-shot on held-out data: loss %.4f -> %.4f (%s), exact match %s -> %s (%s)",
                zero.heldout.loss, comp.heldout.loss, change(comp.heldout.loss - zero.heldout.loss, false).c_str(),
                percent_text(zero.heldout.accuracy).c_str(), percent_text(comp.heldout.accuracy).c_str(),
                change(comp.heldout.accuracy - zero.heldout.accuracy, true).c_str());
  lines.emplace_back(line);
  std::snprintf(line, sizeof(line), "composition vs best single member: loss %s, exact match %s",
                change(comp.heldout.loss - best.heldout.loss, false).c_str(),
                change(comp.heldout.accuracy - best.heldout.accuracy, true).c_str());
  lines.emplace_back(line);
  return lines;
}

namespace {

json number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }
double number_from(const json& j) { return j.is_number() ? j.get<double>() : NAN; }

json score_json(const Score& s) {
  return {{"loss", number(s.loss)}, {"accuracy", number(s.accuracy)}, {"examples", s.examples}};
}

Score score_from(const json& j) { return {number_from(j.at("loss")), number_from(j.at("accuracy")), j.at("examples")}; }

}  // namespace

namespace {

json rows_json(const std::vector<ScoreRow>& rows) {
  json out = json::array();
  for (const ScoreRow& r : rows)
    out.push_back({{"kind", score_kind_name(r.kind)},
                   {"label", r.label},
                   {"weights", r.weights},
                   {"few_shot", score_json(r.few_shot)},
                   {"heldout", score_json(r.heldout)}});
  return out;
}

std::vector<ScoreRow> rows_from(const json& j, const std::string& source) {
  std::vector<ScoreRow> rows;
  for (const json& r : j) {
    ScoreRow row;
    const std::string kind = r.at("kind");
    if (kind == "zero-shot") row.kind = ScoreRow::Kind::ZeroShot;
    else if (kind == "member") row.kind = ScoreRow::Kind::Member;
    else if (kind == "composition") row.kind = ScoreRow::Kind::Composition;
    else throw FormatError(source, "unknown score row kind \"" + kind + "\"");
    row.label = r.at("label");
    for (const json& w : r.at("weights")) row.weights.push_back(number_from(w));
    row.few_shot = score_from(r.at("few_shot"));
    row.heldout = score_from(r.at("heldout"));
    rows.push_back(std::move(row));
  }
  if (rows.empty()) throw FormatError(source, "the scores hold no rows");
  return rows;
}

}  // namespace

std::string evaluation_to_json(const Evaluation& e) {
  json out{{"task", e.task}, {"rows", rows_json(e.rows)}};
  if (!e.seeds.empty()) {
    json seeds = json::array();
    for (const SeedScores& s : e.seeds) {
      json trace = json::array();
      for (const Trial& t : s.trace) trace.push_back({{"weights", t.weights}, {"objective", number(t.objective)}});
      seeds.push_back({{"seed", s.seed},
                       {"data_seed", s.data_seed},
                       {"best_objective", number(s.best_objective)},
                       {"trace", trace},
                       {"rows", rows_json(s.rows)}});
    }
    out["seeds"] = seeds;
  }
  return out.dump();
}

Evaluation evaluation_from_json(const std::string& text, const std::string& source) {
  try {
    const json j = json::parse(text);
    Evaluation e;
    e.task = j.at("task");
    e.rows = rows_from(j.at("rows"), source);
    if (j.contains("seeds"))
      for (const json& s : j.at("seeds")) {
        SeedScores seed;
        seed.seed = s.at("seed");
        seed.data_seed = s.at("data_seed");
        seed.best_objective = number_from(s.at("best_objective"));
        for (const json& t : s.at("trace"))
          seed.trace.push_back({static_cast<int>(seed.trace.size()), t.at("weights"), number_from(t.at("objective"))});
        seed.rows = rows_from(s.at("rows"), source);
        if (seed.rows.size() != e.rows.size())
          throw FormatError(source, "seed " + std::to_string(seed.seed) + " has " + std::to_string(seed.rows.size()) +
                                        " score rows where the evaluation has " + std::to_string(e.rows.size()));
        e.seeds.push_back(std::move(seed));
      }
    return e;
  } catch (const json::exception& ex) {
    throw FormatError(source, std::string("scores are not a composition evaluation: ") + ex.what());
  }
}

CompositionSession::CompositionSession(std::vector<Member> members, SessionOptions options,
                                       const ResolvedSource& base)
    : options_(std::move(options)), composer_(std::move(members), options_.mode, options_.svd_rank) {
  if (options_.shots < 1) throw ConfigError("compose.shots", "need at least one few-shot example");
  if (options_.heldout < 1) throw ConfigError("compose.heldout", "need at least one held-out example");
  if (!(options_.l1 >= 0)) throw ConfigError("compose.l1", "must not be negative");
  const ModelConfig& mc = composer_.member(0).state.model;
  const std::unique_ptr<data::Tokenizer> tok = load_tokenizer(base);
  data::Dataset ds = data::make_task_dataset(options_.task, *tok, options_.shots, options_.heldout, options_.data_seed);
  shots_ = std::move(ds.train);
  heldout_ = std::move(ds.heldout);
  pad_ = data::batch_pad_id(*tok);
  for (const auto* split : {&shots_, &heldout_})
    for (const data::Example& e : *split) seq_len_ = std::max(seq_len_, static_cast<int>(e.tokens.size()) - 1);
  if (seq_len_ > mc.max_seq)
    throw DataError("task " + options_.task + ": examples of " + std::to_string(seq_len_ + 1) +
                    " tokens do not fit the base model's " + std::to_string(mc.max_seq) + " positions");

  backend_ = make_backend(options_.device);
  model_ = std::make_unique<Model>(mc, Model::Mode::Frozen);
  AdapterConfig shape = composer_.result_config();
  shape.dropout = 0;  // evaluation only: no dropout buffers
  attach_adapters(*model_, shape);
  model_->materialize(*backend_, ledger_, max_batch_, seq_len_);
  load_weights(*model_, base);
  const std::string fingerprint = base_fingerprint(*model_);
  const Member& first = composer_.member(0);
  if (fingerprint != first.state.base_fingerprint)
    throw IncompatibleMemberError(first.name, "it was trained on base model fingerprint " +
                                                  first.state.base_fingerprint + ", but " + base.path.string() +
                                                  " holds " + fingerprint + " (was the base rebuilt since?)");
  evaluator_ = std::make_unique<Evaluator>(*model_, pad_);
}

CompositionSession::~CompositionSession() {
  model_.reset();  // its storages belong to the backend
}

void CompositionSession::upload(std::span<const double> weights) {
  load_adapter(*model_, composer_.compose(weights), "composition");
}

Score CompositionSession::score(std::span<const double> weights, std::span<const data::Example> examples) {
  upload(weights);
  return evaluator_->score(examples, true);
}

double CompositionSession::objective(std::span<const double> weights) {
  double l1 = 0;
  for (double w : weights) l1 += std::abs(w);
  return score(weights, shots_).loss + options_.l1 * l1 / static_cast<double>(weights.size());
}

SearchResult CompositionSession::search(const SearchOptions& options, const TrialCallback& on_trial,
                                        const std::atomic<bool>* cancel) {
  return minimize([this](std::span<const double> w) { return objective(w); }, std::vector<double>(size(), 0.0),
                  options, on_trial, cancel);
}

Evaluation CompositionSession::evaluate(std::span<const double> weights) {
  Evaluation e;
  e.task = options_.task;
  auto add = [&](ScoreRow::Kind kind, std::string label, std::vector<double> w) {
    ScoreRow r;
    r.kind = kind;
    r.label = std::move(label);
    r.few_shot = score(w, shots_);
    r.heldout = score(w, heldout_);
    r.weights = std::move(w);
    e.rows.push_back(std::move(r));
  };
  add(ScoreRow::Kind::ZeroShot, "zero-shot", std::vector<double>(size(), 0.0));
  for (std::size_t i = 0; i < size(); ++i) {
    std::vector<double> w(size(), 0.0);
    w[i] = 1;
    add(ScoreRow::Kind::Member, member(i).name, std::move(w));
  }
  add(ScoreRow::Kind::Composition, "composition", {weights.begin(), weights.end()});
  return e;
}

AdapterState CompositionSession::merged(std::span<const double> weights) { return composer_.compose(weights); }

}  // namespace lwb::compose
