// `runs`: the run history in the store — list, show, delete.
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>
#include <string>

#include "app/cli.h"
#include "app/terminal_progress.h"
#include "core/common/integers.h"
#include "core/store/store.h"

namespace lwb::cli {

namespace {

std::string metric(double v, const char* fmt) {
  if (!std::isfinite(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

std::int64_t run_id_arg(const Args& args) {
  if (args.positional().size() != 2) throw UsageError("give a run id, e.g. runs show 3");
  const std::int64_t max = std::numeric_limits<std::int64_t>::max();
  if (const std::optional<std::int64_t> id = parse_integer<std::int64_t>(args.positional()[1], 1, max)) return *id;
  throw UsageError("the run id must be " + integer_range_text<std::int64_t>(1, max) + ", got \"" +
                   terminal_text(args.positional()[1]) + "\"");
}

}  // namespace

int cmd_runs(const Args& args) {
  args.check({"db", "data-dir"}, {"yes"});
  Store store(store_path(args));
  const std::string action = args.positional().empty() ? "list" : args.positional()[0];
  if (action == "list") {
    const auto runs = store.list_runs();
    std::printf("%5s  %-22s %-8s %-16s %-9s %11s %9s %8s %10s %9s  %s\n", "id", "experiment", "method", "data",
                "status", "steps", "eval loss", "exact %", "tokens/s", "peak", "started");
    for (const RunRow& r : runs)
      std::printf("%5lld  %-22s %-8s %-16s %-9s %5lld/%-5lld %9s %8s %10s %9s  %s\n", static_cast<long long>(r.id),
                  terminal_text(r.experiment).c_str(), terminal_text(r.method).c_str(), terminal_text(r.task).c_str(), r.status.c_str(),
                  static_cast<long long>(r.steps_done), static_cast<long long>(r.total_steps),
                  metric(r.final_eval_loss, "%.4f").c_str(), metric(100 * r.final_accuracy, "%.1f").c_str(),
                  metric(r.tokens_per_s, "%.0f").c_str(), format_bytes(static_cast<double>(r.peak_bytes)).c_str(),
                  r.started.c_str());
    std::printf("%zu run(s) in %s\n", runs.size(), terminal_text(store.file().string()).c_str());
    return 0;
  }
  if (action == "show") {
    const RunDetail d = store.get_run(run_id_arg(args));
    std::printf("run %lld of experiment \"%s\": %s, %lld/%lld steps, device %s\nstarted %s, ended %s\n",
                static_cast<long long>(d.row.id), terminal_text(d.row.experiment).c_str(), d.row.status.c_str(),
                static_cast<long long>(d.row.steps_done), static_cast<long long>(d.row.total_steps),
                terminal_text(d.row.device).c_str(), d.row.started.c_str(), d.row.ended.c_str());
    if (!d.row.error.empty()) std::printf("%s: %s\n", d.row.status == "diverged" ? "why" : "error",
                                          terminal_text(d.row.error, true).c_str());
    std::printf("config:\n%s\n", terminal_text(d.config_json, true).c_str());
    if (!d.environment_json.empty())
      std::printf("what the numbers depend on:\n%s",
                  terminal_text(environment_text(environment_from_json(d.environment_json, "run " + std::to_string(d.row.id))),
                                true)
                      .c_str());
    const auto metrics = store.run_metrics(d.row.id);
    std::printf("%zu metric rows", metrics.size());
    if (!metrics.empty())
      std::printf("; last: step %lld loss %s eval %s", static_cast<long long>(metrics.back().step),
                  metric(metrics.back().loss, "%.4f").c_str(), metric(metrics.back().eval_loss, "%.4f").c_str());
    std::printf("\n");
    if (!d.summary_json.empty()) std::printf("result:\n%s\n", terminal_text(d.summary_json, true).c_str());
    return 0;
  }
  if (action == "delete") {
    const std::int64_t id = run_id_arg(args);
    const RunDetail d = store.get_run(id);
    if (!args.has("yes")) {
      std::fprintf(stderr, "this deletes run %lld (%s, %s) with its metrics; its adapters stay in the library.\n"
                           "Repeat with --yes to confirm.\n",
                   static_cast<long long>(id), terminal_text(d.row.experiment).c_str(), d.row.status.c_str());
      return 2;
    }
    store.delete_run(id);
    std::printf("deleted run %lld\n", static_cast<long long>(id));
    return 0;
  }
  throw UsageError("unknown runs action \"" + action + "\"; expected list, show ID or delete ID --yes");
}

}  // namespace lwb::cli
