// libFuzzer target for instruction data: the first byte of the input picks
// how it is read (bits 0-2: the format, auto or one of the five; bits 3-4:
// the byte tokenizer without a template, or the byte-level BPE of
// tests/data/real/llama3_hf with no template, ChatML or its own Llama-3
// template; bit 5: loss on every token; bit 6: truncate instead of drop;
// bit 7: a sequence of 16 tokens instead of 512), the rest is the JSONL file.
// Loading either throws an lwb::Error or gives examples the trainer can use:
// ids in the vocabulary, a scored mask as long as the tokens (or empty), at
// most max_tokens tokens, a token to score, and notes that build. Anything
// else (a crash, a sanitizer report, another exception) is a bug.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "core/common/errors.h"
#include "core/data/chat_template.h"
#include "core/data/hf_tokenizer.h"
#include "core/data/instruction_data.h"

namespace {

using namespace lwb::data;

constexpr JsonlFormat kFormats[] = {JsonlFormat::Auto,          JsonlFormat::Alpaca,
                                    JsonlFormat::Messages,      JsonlFormat::Conversations,
                                    JsonlFormat::PromptCompletion, JsonlFormat::Text,
                                    JsonlFormat::Auto,          JsonlFormat::Auto};

struct Fixture {
  const std::filesystem::path folder = std::filesystem::path(LWB_SOURCE_DIR) / "tests/data/real/llama3_hf";
  ByteTokenizer bytes;
  std::unique_ptr<Tokenizer> bpe = load_hf_tokenizer(folder);
  ChatTemplate chatml = ChatTemplate::builtin("chatml");
  ChatTemplate llama3 = load_hf_chat_template(folder);
  // The input is read from a file, as the trainer reads data.
  const std::filesystem::path file =
      std::filesystem::temp_directory_path() / ("lwb_fuzz_instruction_data_" + std::to_string(getpid()) + ".jsonl");
  ~Fixture() {
    std::error_code ec;
    std::filesystem::remove(file, ec);
  }
};

void check(const Example& e, const Tokenizer& tok, int max_tokens) {
  if (e.tokens.empty() || static_cast<int>(e.tokens.size()) > max_tokens) __builtin_trap();
  if (!e.scored.empty() && e.scored.size() != e.tokens.size()) __builtin_trap();
  if (e.scored_count() == 0) __builtin_trap();
  for (std::int32_t id : e.tokens)
    if (id < 0 || id >= tok.vocab_size()) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const Fixture f;
  if (size == 0) return 0;
  const std::uint8_t how = data[0];
  {
    std::ofstream out(f.file, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data + 1), static_cast<std::streamsize>(size - 1));
  }
  JsonlOptions o;
  o.format = kFormats[how & 7];
  const int setup = (how >> 3) & 3;
  const Tokenizer& tok = setup == 0 ? static_cast<const Tokenizer&>(f.bytes) : *f.bpe;
  o.chat = setup == 2 ? &f.chatml : setup == 3 ? &f.llama3 : nullptr;
  o.loss_all = (how & 32) != 0;
  o.truncate = (how & 64) != 0;
  const int max_tokens = (how & 128) != 0 ? 16 : 512;
  try {
    const Dataset d = load_jsonl(f.file, tok, o, max_tokens, 0.25, how);
    for (const Example& e : d.train) check(e, tok, max_tokens);
    for (const Example& e : d.heldout) check(e, tok, max_tokens);
  } catch (const lwb::Error&) {
  }
  return 0;
}
