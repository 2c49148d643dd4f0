#pragma once
// Tokenizers turn text into model ids. The built-in models use bytes: every
// UTF-8 byte is its own id, plus four specials.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lwb::data {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::string name() const = 0;
  virtual std::int32_t vocab_size() const = 0;
  // No special tokens are added.
  virtual std::vector<std::int32_t> encode(std::string_view text) const = 0;
  // Special tokens are dropped.
  virtual std::string decode(std::span<const std::int32_t> ids) const = 0;
  virtual std::int32_t bos() const = 0;
  virtual std::int32_t eos() const = 0;
  virtual std::int32_t pad() const = 0;
};

// Ids 0..255 are bytes; 256 <bos>, 257 <eos>, 258 <pad>, 259 <sep>.
class ByteTokenizer final : public Tokenizer {
 public:
  static constexpr std::int32_t kBos = 256, kEos = 257, kPad = 258, kSep = 259, kVocab = 260;
  std::string name() const override { return "byte"; }
  std::int32_t vocab_size() const override { return kVocab; }
  std::vector<std::int32_t> encode(std::string_view text) const override;
  std::string decode(std::span<const std::int32_t> ids) const override;
  std::int32_t bos() const override { return kBos; }
  std::int32_t eos() const override { return kEos; }
  std::int32_t pad() const override { return kPad; }
};

// "byte"; ConfigError("model.tokenizer", ...) for anything else.
std::unique_ptr<Tokenizer> make_tokenizer(const std::string& name);

}  // namespace lwb::data
