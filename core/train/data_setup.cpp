#include "core/train/data_setup.h"

#include "core/data/chat_tasks.h"
#include "core/data/tasks.h"

namespace lwb {

DataSetup make_data_setup(const ExperimentConfig& config, const std::filesystem::path& data_dir) {
  DataSetup s;
  s.source = resolve_model(config.model, data_dir);
  s.tokenizer = load_tokenizer(s.source, config.model.tokenizer);
  s.chat = load_chat_template(s.source, config.model.chat_template, *s.tokenizer);
  return s;
}

data::JsonlOptions jsonl_options(const DataConfig& d, const data::ChatTemplate* chat) {
  data::JsonlOptions o;
  o.prompt = d.prompt_field;
  o.completion = d.completion_field;
  o.format = data::parse_jsonl_format(d.format);
  o.chat = chat;
  o.loss_all = d.loss_on == "all";
  o.truncate = d.overlong == "truncate";
  return o;
}

data::Dataset load_experiment_data(const ExperimentConfig& c, const DataSetup& s) {
  const DataConfig& d = c.data;
  const data::Tokenizer& tok = *s.tokenizer;
  const int T = c.train.seq_len;
  if (d.kind == "task" && data::is_chat_task(d.task))
    return data::make_chat_task_dataset(d.task, tok, jsonl_options(d, s.chat ? &*s.chat : nullptr), T + 1, d.n_train,
                                        d.n_heldout, d.seed, d.n_validation);
  if (d.kind == "task") return data::make_task_dataset(d.task, tok, d.n_train, d.n_heldout, d.seed, d.n_validation);
  data::Dataset out =
      d.kind == "jsonl"  ? data::load_jsonl(d.path, tok, jsonl_options(d, s.chat ? &*s.chat : nullptr), T + 1, d.heldout_fraction, d.seed)
      : d.kind == "text" ? data::load_text_corpus(d.path, tok, T, d.heldout_fraction)
                         : data::text_dataset(data::pretrain_corpus(d.corpus_bytes, d.seed), tok, T, 0.02, "pretrain corpus");
  data::carve_validation(out, d.n_validation, d.seed);
  return out;
}

data::DataPreview preview_experiment_data(const ExperimentConfig& c, const DataSetup& s, std::size_t n) {
  if (c.data.kind == "jsonl")
    return data::preview_jsonl(c.data.path, *s.tokenizer, jsonl_options(c.data, s.chat ? &*s.chat : nullptr), c.train.seq_len + 1, n);
  const data::Dataset d = load_experiment_data(c, s);
  data::DataPreview p = data::preview_examples(d.name, d.train, *s.tokenizer, n);
  p.notes = d.notes;
  return p;
}

}  // namespace lwb
