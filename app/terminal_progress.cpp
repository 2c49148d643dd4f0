#include "app/terminal_progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace lwb::cli {

std::string format_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
  return buf;
}

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "--:--";
  const long t = std::lround(s);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof(buf), "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else
    std::snprintf(buf, sizeof(buf), "%ld:%02ld", t / 60, t % 60);
  return buf;
}

std::string terminal_text(std::string_view s, bool keep_newlines) {
  std::string out;
  out.reserve(s.size());
  char buf[16];
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    // The length of a well-formed UTF-8 sequence starting here, or 0.
    std::size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 && c >= 0xC2 ? 2 : (c & 0xF0) == 0xE0 ? 3
                                  : (c & 0xF8) == 0xF0 && c <= 0xF4 ? 4 : 0;
    for (std::size_t k = 1; k < len; ++k)
      if (i + k >= s.size() || (static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) len = 0;
    if (len == 0) {
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
      ++i;
      continue;
    }
    const bool c1 = len == 2 && c == 0xC2 && static_cast<unsigned char>(s[i + 1]) < 0xA0;
    if (c1) {
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(s[i + 1]));
      out += buf;
    } else if (len == 1 && (c < 0x20 || c == 0x7F) && !(c == '\n' && keep_newlines) && c != '\t') {
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out.append(s.substr(i, len));
    }
    i += len;
  }
  return out;
}

TerminalProgress::TerminalProgress(std::string label, bool quiet)
    : label_(terminal_text(label)), quiet_(quiet), tty_(isatty(STDOUT_FILENO) == 1) {}

void TerminalProgress::on_start(const RunInfo& info) {
  if (quiet_) return;
  std::printf("%s: %s on %s, %lld trainable of %lld parameters (%.3f%%), %lld train / %lld held-out examples\n",
              label_.c_str(), terminal_text(info.dataset).c_str(), info.backend.c_str(),
              static_cast<long long>(info.trainable_params), static_cast<long long>(info.model_params),
              100.0 * info.trainable_params / std::max<std::int64_t>(1, info.model_params),
              static_cast<long long>(info.train_examples), static_cast<long long>(info.heldout_examples));
  std::printf("%s: memory %s (frozen %s, trainable %s, activations %s, gradients %s, optimizer %s, workspace %s)\n",
              label_.c_str(), format_bytes(info.memory.total).c_str(),
              format_bytes(info.memory.current[0]).c_str(), format_bytes(info.memory.current[1]).c_str(),
              format_bytes(info.memory.current[2]).c_str(), format_bytes(info.memory.current[3]).c_str(),
              format_bytes(info.memory.current[4]).c_str(), format_bytes(info.memory.current[5]).c_str());
  std::fflush(stdout);
}

void TerminalProgress::on_step(const StepEvent& e) {
  if (quiet_) return;
  if (e.eval) {
    last_eval_loss_ = e.eval->loss;
    last_eval_acc_ = e.eval->accuracy;
  }
  // Samples during training, one line each (newlines in a prompt or an
  // answer shown escaped, so that every sample stays one line).
  for (const TrainingSample& s : e.samples)
    std::printf("%s%s sample %d at step %lld: %s => %s\n", tty_ ? "\r\x1b[K" : "", label_.c_str(), s.prompt + 1,
                static_cast<long long>(e.step), terminal_text(s.prompt_text).c_str(), terminal_text(s.answer).c_str());
  const double eta = e.step > 0 ? e.elapsed_s / e.step * (e.total_steps - e.step) : NAN;
  char evals[64] = "";
  if (last_eval_loss_ >= 0) {
    if (std::isfinite(last_eval_acc_))
      std::snprintf(evals, sizeof(evals), " eval %.4f acc %5.1f%%", last_eval_loss_, 100 * last_eval_acc_);
    else
      std::snprintf(evals, sizeof(evals), " eval %.4f", last_eval_loss_);
  }
  if (tty_) {
    const auto now = std::chrono::steady_clock::now();
    if (!e.eval && e.step != e.total_steps && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const int width = 24;
    const int filled = static_cast<int>(width * e.step / std::max<std::int64_t>(1, e.total_steps));
    std::string bar(filled, '#');
    bar.resize(width, '.');
    std::printf("\r%s [%s] %lld/%lld loss %.4f%s %.0f tok/s ETA %s \x1b[K", label_.c_str(), bar.c_str(),
                static_cast<long long>(e.step), static_cast<long long>(e.total_steps), e.loss, evals,
                e.tokens_per_s, format_duration(eta).c_str());
    if (e.step == e.total_steps) std::printf("\n");
    std::fflush(stdout);
    return;
  }
  const std::int64_t every = std::max<std::int64_t>(1, e.total_steps / 10);
  if (e.eval || e.step % every == 0 || e.step == e.total_steps) {
    std::printf("%s step %lld/%lld loss %.4f%s lr %.2e grad-norm %.3f %.0f tok/s elapsed %s ETA %s\n",
                label_.c_str(), static_cast<long long>(e.step), static_cast<long long>(e.total_steps), e.loss,
                evals, e.lr, e.grad_norm, e.tokens_per_s, format_duration(e.elapsed_s).c_str(),
                format_duration(eta).c_str());
    std::fflush(stdout);
  }
}

void TerminalProgress::on_finish(const RunResult& r) {
  if (quiet_) return;
  if (tty_ && r.status != RunStatus::Finished) std::printf("\n");
  std::printf("%s: %s after %lld steps in %s; held-out loss %.4f", label_.c_str(), run_status_name(r.status),
              static_cast<long long>(r.steps_done), format_duration(r.elapsed_s).c_str(), r.final_eval.loss);
  if (std::isfinite(r.final_eval.accuracy)) std::printf(", exact match %.1f%%", 100 * r.final_eval.accuracy);
  std::printf(", %.0f tokens/s, peak memory %s\n", r.tokens_per_s, format_bytes(r.memory.peak_total).c_str());
  std::fflush(stdout);
}

}  // namespace lwb::cli
