// `study`: the built-in studies (core/study/study.h), their reports stored
// with their runs and written to a folder; the plots are drawn offscreen by
// the window's plotting code when this build has it.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <vector>

#include "app/cli.h"
#include "app/terminal_progress.h"
#include "core/common/paths.h"
#include "core/format/atomic_file.h"
#include "core/source/downloads.h"
#include "core/study/study.h"

#ifdef LWB_WITH_GUI
#include "ui/report_plot.h"
#endif

namespace lwb::cli {

namespace {

int run_one(const Args& args, Store& store, const std::string& name, const StudyOptions& options) {
  const bool quiet = args.has("quiet");
  TerminalProgress pretrain_progress("pretrain", quiet);
  const TrainerEnvironment env = environment(args, &pretrain_progress);
  ComparisonProgress progress(quiet);
  if (!quiet) std::printf("study %s on base %s: %s\n", name.c_str(), options.base.c_str(), study_info(name).design.c_str());
  const StudyResult result = run_study(store, name, options, env, RunControl{&g_stop, nullptr}, &progress);
  std::vector<ComparisonFile> files;
  std::string no_plots;
#ifdef LWB_WITH_GUI
  files = ui::render_study_plots(result.plots);
#else
  no_plots = "this lora-workbench was built without the window (LWB_WITH_GUI=OFF), which draws them";
#endif
  const std::string markdown = finish_study(store, result, files, no_plots);
  const std::filesystem::path out =
      args.has("out") ? std::filesystem::path(args.get("out")) / name / options.base
                      : env.data_folder() / "studies" / (name + "-" + options.base + "-" + timestamp());
  std::filesystem::create_directories(out);
  io::write_file_atomically(out / "report.md", markdown);
  for (const ComparisonFile& f : files)
    io::write_file_atomically(out / f.name, std::string(f.bytes.begin(), f.bytes.end()));
  std::printf("\n%s\n", terminal_text(result.report.text(), true).c_str());
  std::printf("key numbers:\n");
  for (const std::string& line : result.key_numbers) std::printf("  %s\n", terminal_text(line).c_str());
  std::printf("recorded as study %lld in %s; report in %s\n", static_cast<long long>(result.comparison_id),
              terminal_text(store.file().string()).c_str(), terminal_text(out.string()).c_str());
  return result.stopped ? 130 : 0;
}

}  // namespace

int cmd_study(const Args& args) {
  args.check({"data-dir", "db", "out", "seeds", "base", "set"}, {"quiet", "pick-lr", "list"});
  const std::filesystem::path data_dir = environment(args).data_folder();
  if (args.has("list")) {
    for (const StudyInfo& s : study_list())
      std::printf("%-15s %s\n%15s claim: %s\n%15s design: %s\n", s.name.c_str(), s.title.c_str(), "", s.claim.c_str(),
                  "", s.design.c_str());
    std::string bases;
    for (const std::string& b : study_bases(data_dir)) bases += (bases.empty() ? "" : ", ") + b;
    std::printf("bases: %s\n", bases.c_str());
    return 0;
  }
  if (args.positional().size() != 1) throw UsageError("give one study, e.g. study lora-vs-full (study --list names them)");
  const std::string name = args.positional()[0];
  study_info(name);
  StudyOptions options;
  options.seeds = int_arg(args, "seeds", options.seeds, 1, kMaxComparisonSeeds);
  options.pick_lr = args.has("pick-lr");
  options.sets = args.all("set");
  Store store(store_path(args));
  install_stop_handler();
  // "all": every base this build knows, saying which are not there yet.
  const std::string base = args.get("base", "tiny");
  if (base != "all") {
    options.base = base;
    return run_one(args, store, name, options);
  }
  const std::vector<std::string> available = study_bases(data_dir);
  int rc = 0;
  for (const std::string& b : {std::string("tiny"), std::string("smollm2-135m")}) {
    if (std::find(available.begin(), available.end(), b) == available.end()) {
      const DownloadableModel* download = find_downloadable(b);
      std::printf("skipped base %s: not in %s%s\n", b.c_str(), terminal_text((data_dir / "models").string()).c_str(),
                  download ? (" (lora-workbench fetch " + download->fetch_name + ")").c_str() : "");
      continue;
    }
    options.base = b;
    rc = run_one(args, store, name, options);
    if (rc != 0) break;
  }
  return rc;
}

}  // namespace lwb::cli
