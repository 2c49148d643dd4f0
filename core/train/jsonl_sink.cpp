#include "core/train/jsonl_sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/common/errors.h"

namespace lwb {

namespace {
using json = nlohmann::json;

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json snapshot_to_json(const LedgerSnapshot& s) {
  json cats = json::object(), peaks = json::object(), layers = json::array();
  for (int c = 0; c < kMemCategoryCount; ++c) {
    cats[mem_category_key(static_cast<MemCategory>(c))] = s.current[c];
    peaks[mem_category_key(static_cast<MemCategory>(c))] = s.peak[c];
  }
  for (const auto& row : s.rows) {
    json r = {{"layer", row.layer}};
    for (int c = 0; c < kMemCategoryCount; ++c) r[mem_category_key(static_cast<MemCategory>(c))] = row.bytes[c];
    layers.push_back(r);
  }
  return {{"total", s.total}, {"peak_total", s.peak_total}, {"current", cats}, {"peak", peaks}, {"layers", layers}};
}
}  // namespace

std::string ledger_snapshot_json(const LedgerSnapshot& s) { return snapshot_to_json(s).dump(); }

JsonlMetricsSink::JsonlMetricsSink(const std::filesystem::path& file,
                                   std::function<void(const std::string&)> warning)
    : path_(file), warning_(std::move(warning)) {
  fd_ = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw FormatError(file.string(), std::string("cannot create the metrics file: ") + std::strerror(errno));
}

JsonlMetricsSink::~JsonlMetricsSink() {
  if (fd_ >= 0) ::close(fd_);
}

std::string JsonlMetricsSink::step_json(const StepEvent& e) {
  json j = {{"step", e.step},         {"loss", number_or_null(e.loss)},
            {"lr", e.lr},             {"grad_norm", number_or_null(e.grad_norm)},
            {"tokens_per_s", e.tokens_per_s}, {"elapsed_s", e.elapsed_s}};
  if (e.eval) {
    j["eval_loss"] = number_or_null(e.eval->loss);
    j["eval_accuracy"] = number_or_null(e.eval->accuracy);
  }
  if (e.memory) j["memory"] = snapshot_to_json(*e.memory);
  if (!e.layer_grad_norms.empty()) j["layer_grad_norms"] = e.layer_grad_norms;
  for (const auto& v : e.variant_events) j["events"].push_back({{"kind", v.kind}, {"data", json::parse(v.payload_json)}});
  return j.dump();
}

void JsonlMetricsSink::on_step(const StepEvent& e) {
  const std::string line = step_json(e) + "\n";
  ssize_t n = -1;
  do n = ::write(fd_, line.data(), line.size());
  while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(line.size())) return;
  // A short write left part of a line: cut it off again, so the file holds
  // whole lines only.
  const std::string why = n < 0 ? std::strerror(errno) : "short write";
  if (n > 0) {
    const off_t end = ::lseek(fd_, 0, SEEK_END);
    // Best effort: should this fail too, readers skip a partial last line.
    if (end >= n) static_cast<void>(::ftruncate(fd_, end - n) == 0);
  }
  if (lost_lines_++ == 0) {
    write_error_ = path_.string() + ": cannot write step " + std::to_string(e.step) + " (" + why + ")";
    if (warning_) warning_(write_error_ + "; training goes on, later lines may be missing too");
  }
}

std::string run_result_json(const RunResult& r) {
  json j = {{"status", run_status_name(r.status)},
            {"steps", r.steps_done},
            {"final_train_loss", number_or_null(r.final_train_loss)},
            {"eval_loss", number_or_null(r.final_eval.loss)},
            {"eval_accuracy", number_or_null(r.final_eval.accuracy)},
            {"eval_examples", r.final_eval.examples},
            {"elapsed_s", r.elapsed_s},
            {"tokens_per_s", r.tokens_per_s},
            {"memory", snapshot_to_json(r.memory)}};
  if (!r.error.empty()) j["error"] = r.error;
  for (const auto& v : r.summary) j["summary"][v.kind] = json::parse(v.payload_json);
  return j.dump(2);
}

}  // namespace lwb
