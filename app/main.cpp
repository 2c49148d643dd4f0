// lora-workbench: the window by default, headless subcommands otherwise.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "app/cli.h"
#include "core/common/errors.h"
#include "core/cpu/openblas_tune.h"

#ifdef LWB_WITH_GUI
#include "ui/gui_main.h"
#include "ui/screenshots.h"
#endif

namespace {

void print_usage() {
  std::printf(
      "usage: lora-workbench [command] [options]\n"
      "\n"
      "Without a command the window opens (needs a display);\n"
      "--screenshots DIR [STEPS] opens it on the demo preset and saves PNGs of its views.\n"
      "\n"
      "commands:\n"
      "  train     --preset NAME | --config FILE [--set key=value ...] [--out DIR] [--overwrite] [--quiet]\n"
      "            [--db FILE | --no-store]\n"
      "            train one experiment; records it in the store (runs, metrics, adapter) and writes\n"
      "            config.json, metrics.jsonl, result.json and the adapter (PEFT folder) or\n"
      "            model.safetensors into DIR\n"
      "  runs      [list | show ID | delete ID --yes] [--db FILE]   the run history in the store\n"
      "  pretrain  [--preset tiny|small] [--force]   build the cached base model of a preset\n"
      "  compare   PRESET [--out DIR]   train several methods on one task and print a table\n"
      "            (preset: tiny-methods = LoRA, rsLoRA, DoRA, AdaLoRA, ReLoRA, full fine-tuning)\n"
      "  presets   list the built-in experiment and model presets\n"
      "  config    --preset NAME | --config FILE [--set key=value ...]   print the resolved config\n"
      "\n"
      "common options: --data-dir DIR (default $LWB_DATA_DIR, $XDG_DATA_HOME/lora-workbench or\n"
      "~/.local/share/lora-workbench); --db FILE (default $LWB_DB or <data dir>/workbench.sqlite3)\n");
}

bool have_display() {
  const char* platform = std::getenv("QT_QPA_PLATFORM");
  if (platform && *platform) return true;  // offscreen, vnc, ... chosen explicitly
  const char* x = std::getenv("DISPLAY");
  const char* w = std::getenv("WAYLAND_DISPLAY");
  return (x && *x) || (w && *w);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace lwb::cli;
  lwb::reexec_for_avx512_openblas(argv);
  const std::string command = argc > 1 ? argv[1] : "";
  if (command == "--help" || command == "-h" || command == "help") {
    print_usage();
    return 0;
  }
  register_gpu_backend();
  if (command.empty() || command.rfind("-", 0) == 0) {
#ifdef LWB_WITH_GUI
    if (!have_display()) {
      std::fprintf(stderr,
                   "lora-workbench: no display found (DISPLAY / WAYLAND_DISPLAY are not set).\n"
                   "Run it headless instead, for example:\n"
                   "  lora-workbench train --preset demo\n"
                   "  lora-workbench presets\n"
                   "or start the window on a virtual display: xvfb-run -a lora-workbench\n");
      return 2;
    }
    if (command == "--screenshots") {
      if (argc < 3) {
        std::fprintf(stderr, "usage: lora-workbench --screenshots DIR [STEPS]\n");
        return 2;
      }
      return lwb::ui::run_screenshots(argc, argv, argv[2], argc > 3 ? std::atoi(argv[3]) : 150);
    }
    return lwb::ui::run_gui(argc, argv);
#else
    std::fprintf(stderr, "lora-workbench was built without the window (LWB_WITH_GUI=OFF)\n");
    print_usage();
    return 2;
#endif
  }
  try {
    const Args args(argc, argv, 2);
    if (command == "train") return cmd_train(args);
    if (command == "pretrain") return cmd_pretrain(args);
    if (command == "presets") return cmd_presets(args);
    if (command == "compare") return cmd_compare(args);
    if (command == "runs") return cmd_runs(args);
    if (command == "config") return cmd_config(args);
    std::fprintf(stderr, "lora-workbench: unknown command \"%s\"\n\n", command.c_str());
    print_usage();
    return 2;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "lora-workbench %s: %s\n(see lora-workbench --help)\n", command.c_str(), e.what());
    return 2;
  } catch (const lwb::ConfigError& e) {
    std::fprintf(stderr, "lora-workbench %s: invalid setting %s\n", command.c_str(), e.what());
    return 2;
  } catch (const lwb::Error& e) {
    std::fprintf(stderr, "lora-workbench %s: %s\n", command.c_str(), e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lora-workbench %s: unexpected error: %s\n", command.c_str(), e.what());
    return 1;
  }
}
