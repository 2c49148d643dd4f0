#pragma once
// Tokenizers turn text into model ids. The built-in models use bytes: every
// UTF-8 byte is its own id, plus four specials. Real models bring their own
// (bpe_tokenizer.h, sentencepiece_tokenizer.h; loaded by hf_tokenizer.h and
// gguf_tokenizer.h) behind the same interface.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lwb::data {

struct EncodeOptions {
  // Wrap the text as the model's own post-processor does (Hugging Face's
  // add_special_tokens=True): bos for Llama-style models, nothing for GPT-2.
  bool add_special = false;
  // Special-token strings in the text ("<|im_start|>") become their ids.
  // Off, they are tokenized as plain text, so user text cannot forge them.
  // Non-special added tokens are always matched, as Hugging Face does.
  bool parse_special = false;
};

struct DecodeOptions {
  bool skip_special = true;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::string name() const = 0;
  // One more than the largest id the tokenizer produces.
  virtual std::int32_t vocab_size() const = 0;
  // Non-virtual so that callers (and derived classes) share the defaults.
  std::vector<std::int32_t> encode(std::string_view text, const EncodeOptions& opt = {}) const {
    return encode_impl(text, opt);
  }
  // Ids outside the vocabulary are skipped.
  std::string decode(std::span<const std::int32_t> ids, const DecodeOptions& opt = {}) const {
    return decode_impl(ids, opt);
  }
  // -1 where the model has none.
  virtual std::int32_t bos() const = 0;
  virtual std::int32_t eos() const = 0;
  virtual std::int32_t pad() const = 0;
  virtual std::int32_t unk() const = 0;
  // The vocabulary's own string for an id ("Ġthe", "▁the", "<0x0A>", "<|im_end|>");
  // empty for an id outside the vocabulary.
  virtual std::string id_to_piece(std::int32_t id) const = 0;
  // -1 if the piece is not in the vocabulary.
  virtual std::int32_t token_to_id(std::string_view piece) const = 0;
  virtual bool is_special(std::int32_t id) const = 0;
  // Ids that end a generation: eos, and for chat models the turn end
  // (<|im_end|>, <|eot_id|>), which is often not the eos.
  virtual std::vector<std::int32_t> stop_ids() const = 0;

 protected:
  virtual std::vector<std::int32_t> encode_impl(std::string_view text, const EncodeOptions& opt) const = 0;
  virtual std::string decode_impl(std::span<const std::int32_t> ids, const DecodeOptions& opt) const = 0;
};

// Ids 0..255 are bytes; 256 <bos>, 257 <eos>, 258 <pad>, 259 <sep>.
class ByteTokenizer final : public Tokenizer {
 public:
  static constexpr std::int32_t kBos = 256, kEos = 257, kPad = 258, kSep = 259, kVocab = 260;
  std::string name() const override { return "byte"; }
  std::int32_t vocab_size() const override { return kVocab; }
  std::int32_t bos() const override { return kBos; }
  std::int32_t eos() const override { return kEos; }
  std::int32_t pad() const override { return kPad; }
  std::int32_t unk() const override { return -1; }
  std::string id_to_piece(std::int32_t id) const override;
  std::int32_t token_to_id(std::string_view piece) const override;
  bool is_special(std::int32_t id) const override { return id >= kBos && id < kVocab; }
  std::vector<std::int32_t> stop_ids() const override { return {kEos}; }

 protected:
  // add_special puts <bos> in front.
  std::vector<std::int32_t> encode_impl(std::string_view text, const EncodeOptions& opt) const override;
  std::string decode_impl(std::span<const std::int32_t> ids, const DecodeOptions& opt) const override;
};

// "byte"; ConfigError("model.tokenizer", ...) for anything else.
std::unique_ptr<Tokenizer> make_tokenizer(const std::string& name);

}  // namespace lwb::data
