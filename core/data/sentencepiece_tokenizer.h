#pragma once
// A SentencePiece tokenizer.model (LLaMA-2, Mistral v0.1, TinyLlama; BPE or
// unigram) run by the SentencePiece library itself, so its normalization
// rules and algorithms are the reference ones. Added tokens, specials and
// decoding are the shared VocabTokenizer's.
#include <filesystem>
#include <memory>
#include <optional>

#include "core/data/vocab_tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace lwb::data {

// What a Hugging Face folder says beside the model file.
struct SentencePieceOptions {
  std::vector<AddedToken> added;  // tokenizer_config.json's added_tokens_decoder, beyond the model's own
  std::optional<std::string> bos, eos, pad, unk;  // token strings overriding the model's ids
  bool add_bos = true, add_eos = false;           // transformers' LlamaTokenizer defaults
  std::vector<std::int32_t> stop;
};

class SentencePieceTokenizer final : public VocabTokenizer {
 public:
  // FormatError(file, ...) if the library cannot load it.
  SentencePieceTokenizer(const std::filesystem::path& file, const SentencePieceOptions& options);
  ~SentencePieceTokenizer() override;

 private:
  SentencePieceTokenizer(std::unique_ptr<sentencepiece::SentencePieceProcessor> sp,
                         const std::filesystem::path& file, const SentencePieceOptions& options);
  void encode_text(std::string_view text, bool at_start, std::vector<std::int32_t>& out) const override;

  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
};

}  // namespace lwb::data
