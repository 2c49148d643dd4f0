#pragma once
// The model settings of an experiment, apart from what they resolve to
// (model_source.h), so that configs need not include model loading.
#include <string>

namespace lwb {

// The experiment's model.* settings (ExperimentConfig::model).
struct ModelSource {
  // A built-in preset (tiny, small) or a downloaded model (smollm2-135m).
  std::string preset = "tiny";
  // "pretrained": the preset's weights (a built-in preset's cached base, made
  // by `pretrain` on first use; a downloaded model's file); "random": a fresh
  // initialisation of the preset's shape; anything else: the path of a Hugging
  // Face folder, a .gguf file or a base checkpoint, whose own shape replaces
  // the preset's.
  std::string base = "pretrained";
  // "fp32" or "bf16": the dtype the frozen projections (q k v o gate up down)
  // are kept in during adapter training, converted from the fp32 checkpoint at
  // load (core/model/model.h). Adapters, activations, gradients, optimiser
  // state, embeddings, norms and lm_head stay fp32. ReLoRA refuses bf16 (it
  // merges into the base); full fine-tuning ignores it (nothing is frozen).
  std::string frozen_dtype = "fp32";
  // "auto": the model's own (bytes for this program's models, the folder's
  // tokenizer.json or tokenizer.model, the GGUF file's vocabulary); "byte";
  // or the path of a Hugging Face folder, a tokenizer.json or a .gguf file.
  std::string tokenizer = "auto";
  // "auto": the model's own (chat_template.jinja or tokenizer_config.json's
  // chat_template; a GGUF file's tokenizer.chat_template), none when it has
  // none; "none"; "chatml" (built in); or the path of a .jinja file.
  std::string chat_template = "auto";
};

}  // namespace lwb
