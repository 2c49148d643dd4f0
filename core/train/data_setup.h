#pragma once
// An experiment's data as its run reads it: the tokenizer and chat template
// of its model source, the data set, and the preview of what the model will
// see (the CLI's `data preview` and the window's Setup tab show the same).
#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>

#include "core/data/chat_template.h"
#include "core/data/data_preview.h"
#include "core/data/dataset.h"
#include "core/data/instruction_data.h"
#include "core/data/tokenizer.h"
#include "core/source/model_source.h"
#include "core/train/experiment_config.h"

namespace lwb {

struct DataSetup {
  ResolvedSource source;
  std::unique_ptr<data::Tokenizer> tokenizer;
  std::optional<data::ChatTemplate> chat;
};

// Resolves the model (reading its shape, not its weights) and loads its
// tokenizer and chat template as model.tokenizer and model.chat_template say.
DataSetup make_data_setup(const ExperimentConfig& config, const std::filesystem::path& data_dir);
// The reading options of data.* with `chat` (not owned; nullptr: none).
data::JsonlOptions jsonl_options(const DataConfig& data, const data::ChatTemplate* chat);
// The data set of data.kind (task, jsonl, text, pretrain) with the setup's
// tokenizer; examples of at most train.seq_len + 1 tokens.
data::Dataset load_experiment_data(const ExperimentConfig& config, const DataSetup& setup);
// The first `n` examples and statistics, as the run would read them.
data::DataPreview preview_experiment_data(const ExperimentConfig& config, const DataSetup& setup, std::size_t n);

}  // namespace lwb
