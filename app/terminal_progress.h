#pragma once
// Training progress on the terminal: a redrawn one-line bar when stdout is a
// terminal, plain lines (every tenth of the run and at each evaluation) when
// it is a pipe or a file.
#include <chrono>
#include <string>
#include <string_view>

#include <memory>

#include "core/train/compare_run.h"
#include "core/train/events.h"

namespace lwb::cli {

class TerminalProgress : public TrainerSink {
 public:
  explicit TerminalProgress(std::string label, bool quiet = false);
  void on_start(const RunInfo& info) override;
  void on_step(const StepEvent& e) override;
  void on_finish(const RunResult& r) override;

 private:
  std::string label_;
  bool quiet_;
  bool tty_;
  double last_eval_loss_ = -1, last_eval_acc_ = -1;
  std::chrono::steady_clock::time_point last_draw_{};
};

// A progress bar per run of a comparison, named after its place in it
// ("dora seed 2 (lr 0.002) [5/18]").
class ComparisonProgress : public ComparisonObserver {
 public:
  explicit ComparisonProgress(bool quiet) : quiet_(quiet) {}
  TrainerSink* run_sink(const ComparisonRunTag& tag, Trainer&) override {
    bar_ = std::make_unique<TerminalProgress>(tag.text(), quiet_);
    return bar_.get();
  }

 private:
  bool quiet_;
  std::unique_ptr<TerminalProgress> bar_;
};

std::string format_bytes(double bytes);
std::string format_duration(double seconds);
// `s` safe to print on a terminal: control characters (C0, DEL, C1), which
// could move the cursor, clear the screen or retitle the window, and bytes
// that are not UTF-8 are shown escaped ("\x1b", "\u009b"). Line breaks stay
// when `keep_newlines` (multi-line messages).
std::string terminal_text(std::string_view s, bool keep_newlines = false);

}  // namespace lwb::cli
