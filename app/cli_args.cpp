#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <optional>

#include "app/cli.h"
#include "app/terminal_progress.h"
#include "core/common/integers.h"
#include "core/store/store.h"

namespace lwb::cli {

Args::Args(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    // "-n 3" is "--n 3": one-letter short options.
    const bool short_flag = a.size() == 2 && a[0] == '-' && std::isalpha(static_cast<unsigned char>(a[1]));
    if (a.rfind("--", 0) != 0 && !short_flag) {
      positional_at_.emplace_back(i, a);
      positional_.push_back(a);
      continue;
    }
    a = a.substr(short_flag ? 1 : 2);
    if (const auto eq = a.find('='); eq != std::string::npos) {
      flags_.emplace(a.substr(0, eq), Flag{a.substr(eq + 1)});
    } else if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {
      flags_.emplace(a, Flag{argv[i + 1], i + 1});
      ++i;
    } else {
      flags_.emplace(a, Flag{});
    }
  }
}

bool Args::has(const std::string& flag) const { return flags_.count(flag) > 0; }

std::string Args::get(const std::string& flag, const std::string& fallback) const {
  const auto it = flags_.find(flag);
  return it == flags_.end() ? fallback : it->second.value;
}

std::vector<std::string> Args::all(const std::string& flag) const {
  std::vector<std::string> out;
  for (auto [it, end] = flags_.equal_range(flag); it != end; ++it) out.push_back(it->second.value);
  return out;
}

void Args::check(const std::vector<std::string>& known, const std::vector<std::string>& switches) const {
  bool moved = false;
  for (auto& [flag, f] : flags_) {
    const bool is_switch = std::find(switches.begin(), switches.end(), flag) != switches.end();
    const bool is_known = std::find(known.begin(), known.end(), flag) != known.end();
    if (!is_switch && !is_known) throw UsageError("unknown option --" + flag);
    if (is_known && !is_switch && f.value.empty()) throw UsageError("option --" + flag + " needs a value");
    if (is_switch && !is_known && f.value_at >= 0) {
      positional_at_.emplace_back(f.value_at, f.value);
      f = Flag{};
      moved = true;
    }
  }
  if (!moved) return;
  std::sort(positional_at_.begin(), positional_at_.end());
  positional_.clear();
  for (const auto& [at, word] : positional_at_) positional_.push_back(word);
}

std::atomic<bool> g_stop{false};

namespace {
void on_sigint(int) {
  g_stop = true;
  std::signal(SIGINT, SIG_DFL);
}
}  // namespace

void install_stop_handler() { std::signal(SIGINT, on_sigint); }

std::string timestamp() {
  char buf[32];
  const std::time_t t = std::time(nullptr);
  std::strftime(buf, sizeof(buf), "%Y%m%d-%H%M%S", std::localtime(&t));
  return buf;
}

int int_arg(const Args& a, const std::string& flag, int fallback, int lo, int hi) {
  if (!a.has(flag)) return fallback;
  if (const std::optional<int> v = parse_integer<int>(a.get(flag), lo, hi)) return *v;
  throw UsageError("--" + flag + " expects " + integer_range_text(lo, hi) + ", got \"" +
                   terminal_text(a.get(flag)) + "\"");
}

double number_arg(const Args& a, const std::string& flag, double fallback) {
  if (!a.has(flag)) return fallback;
  const std::string v = a.get(flag);
  try {
    std::size_t end = 0;
    const double x = std::stod(v, &end);
    if (end == v.size()) return x;
  } catch (const std::exception&) {
  }
  throw UsageError("--" + flag + " expects a number, got \"" + terminal_text(v) + "\"");
}

TrainerEnvironment environment(const Args& a, TrainerSink* pretrain_progress) {
  TrainerEnvironment env;
  if (a.has("data-dir")) env.data_dir = a.get("data-dir");
  env.notice = [](const std::string& msg) { std::fprintf(stderr, "note: %s\n", terminal_text(msg, true).c_str()); };
  env.pretrain_sink = pretrain_progress;
  return env;
}

std::filesystem::path store_path(const Args& args) {
  if (args.has("db")) return args.get("db");
  if (args.has("data-dir")) return std::filesystem::path(args.get("data-dir")) / "workbench.sqlite3";
  return Store::default_path();
}

}  // namespace lwb::cli
