// `plan`: will a training run fit, and where does its memory go.
#include <cstdio>
#include <limits>
#include <optional>
#include <sstream>

#include "app/cli.h"
#include "app/terminal_progress.h"
#include "core/adapters/descriptor.h"
#include "core/common/integers.h"
#include "core/common/paths.h"
#include "core/plan/planner.h"

namespace lwb::cli {

namespace {

void print_plan_usage() {
  std::string methods;
  for (const std::string& m : variant_names()) methods += (methods.empty() ? "" : ", ") + m;
  std::string shipped;
  for (const auto& n : shipped_model_names(resources_dir())) shipped += (shipped.empty() ? "" : ", ") + n;
  if (shipped.empty()) shipped = "none found";
  std::printf(
      "usage: lora-workbench plan --model NAME|FILE [--method M | --compare M1,M2,...] [options]\n"
      "\n"
      "Estimates the memory of a training run per category (frozen and trainable weights,\n"
      "activations, gradients, optimiser state, workspace), per layer and in total, with the\n"
      "formula of every term, and whether it fits a GPU. Sizes in binary units (GiB = 2^30 bytes).\n"
      "\n"
      "  --model NAME|FILE   tiny, small (built-in), a shipped config (%s)\n"
      "                      or the path of an HF config.json of the LLaMA family\n"
      "  --method M          %s (default lora; AdaLoRA at its initial rank)\n"
      "  --compare M1,M2     the methods side by side instead of one method's tables\n"
      "  --rank R            adapter rank (default 8)\n"
      "  --targets LIST      q,k,v,o,gate,up,down or all (default q,v)\n"
      "  --dropout P         adapter dropout (default 0)\n"
      "  --batch B           rows per step (default 1)\n"
      "  --seq T             tokens per row (default 512, or the model's maximum if smaller)\n"
      "  --precision P       fp32, bf16, fp16 (everything in that format), mixed (bf16 weights and\n"
      "                      activations, fp32 master copies of trained weights, fp32 adapters) or\n"
      "                      bf16-frozen (the engine's model.frozen_dtype = bf16: frozen projections in\n"
      "                      bf16, the rest fp32; workbench, adapter methods but ReLoRA);\n"
      "                      default fp32 (workbench) or bf16 (pytorch-eager)\n"
      "  --optimizer S       AdamW moments in fp32, bf16 or 8bit (bitsandbytes blockwise); default:\n"
      "                      the dtype of the tensors they update, as torch.optim.AdamW keeps them\n"
      "  --checkpointing     gradient checkpointing per layer (pytorch-eager only)\n"
      "  --profile P         workbench: this engine's buffers (fp32 CPU layout, checked against its\n"
      "                      memory ledger; default for tiny and small), pytorch-eager: HF\n"
      "                      transformers + PEFT with eager attention (T x T probabilities per head,\n"
      "                      fp32 logits for the loss; default for other models). Neither counts\n"
      "                      the CUDA context or allocator fragmentation.\n"
      "  --threads N         workbench: OpenMP threads sizing the attention scratch (default %d)\n"
      "  --gpu GIB           the GPU to check against: 24, 48, 80, 141 or any size in GiB\n"
      "                      (default: all four)\n"
      "\n"
      "The seed's headline (LISA paper, Figure 3: LLaMA-2-7B at batch 1, full fine-tuning ~60 GB,\n"
      "LoRA ~23 GB, LoRA saving ~25 GB of optimiser state and ~14 GB of gradients) comes out\n"
      "within 10%% (58.9, 21.7, 25.7, 12.8 GB) under these assumptions: pure bf16 training\n"
      "(weights, gradients and both AdamW moments in bf16, no fp32 master weights: fp32 moments\n"
      "alone would take 54 GB), 512 tokens, eager attention, no checkpointing, and LoRA at rank 128\n"
      "on all seven projections with dropout 0.05:\n"
      "  lora-workbench plan --model llama-2-7b --compare full,lora --rank 128 --targets all \\\n"
      "      --dropout 0.05 --batch 1 --seq 512 --precision bf16 --optimizer bf16 --profile pytorch-eager\n"
      "\n"
      "Shipped configs are looked up in $LWB_RESOURCES/models, else <executable dir>/../../resources/models,\n"
      "else <executable dir>/../share/lora-workbench/resources/models.\n",
      shipped.c_str(), methods.c_str(), default_plan_threads());
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

template <class T>
T positive_int(const Args& a, const std::string& flag, T fallback) {
  if (!a.has(flag)) return fallback;
  const T max = std::numeric_limits<T>::max();
  if (const std::optional<T> n = parse_integer<T>(a.get(flag), 1, max)) return *n;
  throw UsageError("--" + flag + " expects " + integer_range_text<T>(1, max) + ", got \"" +
                   terminal_text(a.get(flag)) + "\"");
}

double gib_bytes(double gib) { return gib * 1024 * 1024 * 1024; }

// "24 GiB GPU: fits, 84.3% of it".
std::string fit_line(const MemoryPlan& plan, double gib) {
  const double need = static_cast<double>(plan.total);
  char buf[160];
  std::snprintf(buf, sizeof(buf), "%g GiB GPU: %s, %.1f%% of it", gib, need <= gib_bytes(gib) ? "fits" : "does not fit",
                100 * need / gib_bytes(gib));
  return buf;
}

// One row per GPU under the comparison table: "yes  84%" per method.
std::string fit_rows(const std::vector<MemoryPlan>& plans, const std::vector<double>& gpus) {
  std::string out;
  char buf[64];
  for (double g : gpus) {
    std::snprintf(buf, sizeof(buf), "%g GiB GPU", g);
    std::snprintf(buf, sizeof(buf), "%-20s", std::string(buf).c_str());
    out += buf;
    for (const MemoryPlan& p : plans) {
      const double share = static_cast<double>(p.total) / gib_bytes(g);
      std::snprintf(buf, sizeof(buf), "%s %.0f%%", share <= 1 ? "fits" : "no", 100 * share);
      std::snprintf(buf, sizeof(buf), "%16s", std::string(buf).c_str());
      out += buf;
    }
    out += "\n";
  }
  return out;
}

}  // namespace

int cmd_plan(const Args& args) {
  if (args.has("help")) {
    print_plan_usage();
    return 0;
  }
  args.check({"model", "method", "compare", "rank", "targets", "dropout", "batch", "seq", "precision", "optimizer",
              "profile", "threads", "gpu"},
             {"checkpointing", "help"});
  if (!args.has("model")) throw UsageError("give --model NAME|FILE (see lora-workbench plan --help)");
  if (args.has("method") && args.has("compare")) throw UsageError("give --method or --compare, not both");

  PlanInput in;
  in.model = load_plan_model(args.get("model"), resources_dir());
  in.profile = args.has("profile") ? parse_plan_profile(args.get("profile")) : default_plan_profile(args.get("model"));
  in.adapter.r = positive_int<int>(args, "rank", 8);
  in.adapter.dropout = number_arg(args, "dropout", 0.0);
  if (args.has("targets")) {
    const std::string t = args.get("targets");
    in.adapter.targets.clear();
    if (t == "all")
      in.adapter.targets.assign(kAllTargets.begin(), kAllTargets.end());
    else
      for (const std::string& s : split_list(t)) in.adapter.targets.push_back(parse_target(s, "plan.targets"));
  }
  in.batch = positive_int<std::int64_t>(args, "batch", 1);
  in.seq = positive_int<std::int64_t>(args, "seq", default_plan_seq(in.model));
  in.precision = parse_plan_precision(args.get("precision", default_plan_precision(in.profile)));
  in.optimizer =
      args.has("optimizer") ? parse_optimizer_states(args.get("optimizer")) : default_optimizer_states(in.precision);
  in.checkpointing = args.has("checkpointing");
  in.threads = positive_int<int>(args, "threads", default_plan_threads());

  std::vector<double> gpus = {24, 48, 80, 141};
  if (args.has("gpu")) {
    const double g = number_arg(args, "gpu", 0);
    if (!(g > 0)) throw UsageError("--gpu expects a size in GiB, got \"" + args.get("gpu") + "\"");
    gpus = {g};
  }

  const std::vector<std::string> methods =
      args.has("compare") ? split_list(args.get("compare")) : std::vector<std::string>{args.get("method", AdapterConfig().method)};
  if (methods.empty()) throw UsageError("--compare expects a comma-separated list of methods");
  std::vector<MemoryPlan> plans;
  for (const std::string& m : methods) {
    PlanInput one = in;
    select_method(one.adapter, m);
    plans.push_back(plan_memory(one));
  }

  if (args.has("compare")) {
    std::printf("%s%s", format_plan_comparison(plans).c_str(), fit_rows(plans, gpus).c_str());
    return 0;
  }
  std::printf("%s\nper layer:\n%s\n", format_plan_table(plans.front()).c_str(),
              format_plan_layers(plans.front()).c_str());
  for (double g : gpus) std::printf("%s\n", fit_line(plans.front(), g).c_str());
  return 0;
}

}  // namespace lwb::cli
