#include "core/data/gguf_to_hf.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/common/errors.h"
#include "core/data/unicode.h"

namespace lwb::data {

namespace {

using json = nlohmann::ordered_json;

const char* const kSpace = "\u2581";

json added_tokens(const GgufVocab& v) {
  json list = json::array();
  for (std::size_t id = 0; id < v.tokens.size(); ++id) {
    const std::int32_t type = gguf_token_type(v, id);
    if (!gguf_added_token(type)) continue;
    // normalized false: matched in the raw text, as llama.cpp matches them.
    list.push_back({{"id", id}, {"content", v.tokens[id]}, {"single_word", false}, {"lstrip", false},
                    {"rstrip", false}, {"normalized", false}, {"special", type != kGgufUserDefined}});
  }
  return list;
}

// SentencePiece BPE joins the adjacent pair whose concatenation has the best
// score, and only into normal tokens. As ranked merges: every split of such
// a token into two tokens, best score first. Equal scores keep id order
// (llama.cpp would try the leftmost pair of a tie first; SentencePiece's own
// vocabularies give every mergeable piece its own score).
std::vector<std::pair<std::string, std::string>> score_merges(const GgufVocab& v) {
  std::unordered_map<std::string_view, std::int32_t> ids;
  for (std::size_t id = 0; id < v.tokens.size(); ++id)
    if (!v.tokens[id].empty()) ids.emplace(v.tokens[id], static_cast<std::int32_t>(id));
  struct Candidate {
    float score;
    std::size_t token, split;
  };
  std::vector<Candidate> candidates;
  for (std::size_t t = 0; t < v.tokens.size(); ++t) {
    if (gguf_token_type(v, t) != kGgufNormal) continue;
    const std::string_view piece = v.tokens[t];
    for (std::size_t k = utf8_length(piece, 0); k > 0 && k < piece.size();) {
      if (ids.contains(piece.substr(0, k)) && ids.contains(piece.substr(k))) candidates.push_back({v.scores[t], t, k});
      const std::size_t len = utf8_length(piece, k);
      k += len ? len : 1;
    }
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(candidates.size());
  for (const Candidate& c : candidates) {
    const std::string& piece = v.tokens[c.token];
    merges.emplace_back(piece.substr(0, c.split), piece.substr(c.split));
  }
  return merges;
}

json bpe_model(const GgufVocab& v, const std::vector<std::pair<std::string, std::string>>& merges, bool sentencepiece,
               bool ignore_merges) {
  json vocab = json::object();
  // An empty token cannot be looked up; llama.cpp files use them as holes.
  for (std::size_t id = 0; id < v.tokens.size(); ++id)
    if (!v.tokens[id].empty()) vocab[v.tokens[id]] = id;
  json pairs = json::array();
  for (const auto& [left, right] : merges) pairs.push_back(json::array({left, right}));
  return {{"type", "BPE"},
          {"dropout", nullptr},
          {"unk_token", sentencepiece && v.unk >= 0 ? json(v.tokens[static_cast<std::size_t>(v.unk)]) : json()},
          {"continuing_subword_prefix", nullptr},
          {"end_of_word_suffix", nullptr},
          {"fuse_unk", sentencepiece},
          {"byte_fallback", sentencepiece},
          {"ignore_merges", ignore_merges},
          {"vocab", std::move(vocab)},
          {"merges", std::move(pairs)}};
}

// bos before the text and eos after it, where the vocabulary adds them;
// null when it adds neither.
json template_processing(const GgufVocab& v) {
  std::vector<std::int32_t> before, after;
  if (gguf_adds_bos(v)) before.push_back(v.bos);
  if (gguf_adds_eos(v)) after.push_back(v.eos);
  if (before.empty() && after.empty()) return nullptr;
  json specials = json::object();
  const auto special = [&](std::int32_t id, int type_id) {
    const std::string& token = v.tokens[static_cast<std::size_t>(id)];
    specials[token] = {{"id", token}, {"ids", json::array({id})}, {"tokens", json::array({token})}};
    return json{{"SpecialToken", {{"id", token}, {"type_id", type_id}}}};
  };
  const auto sequence = [&](const char* name, int type_id) {
    json out = json::array();
    for (std::int32_t id : before) out.push_back(special(id, type_id));
    out.push_back({{"Sequence", {{"id", name}, {"type_id", type_id}}}});
    for (std::int32_t id : after) out.push_back(special(id, type_id));
    return out;
  };
  json single = sequence("A", 0), pair = sequence("A", 0);
  for (json& item : sequence("B", 1)) pair.push_back(std::move(item));
  return {{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", specials}};
}

json byte_level_tokenizer(const GgufVocab& v) {
  const GgufPreTokenizer& pre = gguf_pre_tokenizer(v);
  json steps = json::array();
  for (const char* pattern : pre.patterns)
    steps.push_back({{"type", "Split"}, {"pattern", {{"Regex", pattern}}}, {"behavior", "Isolated"}, {"invert", false}});
  steps.push_back({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}});
  json post = template_processing(v);
  if (post.is_null())
    post = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}};
  return {{"normalizer", pre.nfc ? json{{"type", "NFC"}} : json()},
          {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", std::move(steps)}}},
          {"post_processor", std::move(post)},
          {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
          {"model", bpe_model(v, gguf_merges(v), false, pre.ignore_merges)}};
}

json sentencepiece_tokenizer(const GgufVocab& v) {
  const bool prefix = gguf_space_prefix(v);
  json normalizers = json::array();
  if (prefix) normalizers.push_back({{"type", "Prepend"}, {"prepend", kSpace}});
  normalizers.push_back({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpace}});
  json decoders = json::array({json{{"type", "Replace"}, {"pattern", {{"String", kSpace}}}, {"content", " "}},
                               json{{"type", "ByteFallback"}}, json{{"type", "Fuse"}}});
  if (prefix) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
  return {{"normalizer", {{"type", "Sequence"}, {"normalizers", std::move(normalizers)}}},
          {"pre_tokenizer", nullptr},
          {"post_processor", template_processing(v)},
          {"decoder", {{"type", "Sequence"}, {"decoders", std::move(decoders)}}},
          {"model", bpe_model(v, score_merges(v), true, false)}};
}

}  // namespace

HfTokenizerFiles gguf_to_hf_tokenizer(const GgufVocab& v, const std::optional<std::string>& chat_template,
                                      std::int64_t model_max_length) {
  make_gguf_tokenizer(v);  // every check the engine's own loading makes, and the model type
  const json pipeline = v.model == "gpt2" ? byte_level_tokenizer(v) : sentencepiece_tokenizer(v);
  json tokenizer = {{"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}, {"added_tokens", added_tokens(v)}};
  for (const auto& [key, value] : pipeline.items()) tokenizer[key] = value;

  json specials = json::object();
  const std::pair<const char*, std::int32_t> named[] = {
      {"bos_token", v.bos}, {"eos_token", v.eos}, {"unk_token", v.unk}, {"pad_token", v.pad}};
  for (const auto& [key, id] : named)
    if (id >= 0) specials[key] = v.tokens[static_cast<std::size_t>(id)];
  json config = {{"add_bos_token", gguf_adds_bos(v)}, {"add_eos_token", gguf_adds_eos(v)}};
  for (const auto& [key, value] : specials.items()) config[key] = value;
  if (chat_template) config["chat_template"] = *chat_template;
  config["clean_up_tokenization_spaces"] = false;
  config["model_max_length"] = model_max_length;
  // The generic fast tokenizer keeps tokenizer.json as written; a model
  // class (LlamaTokenizer) would rebuild its own pipeline in transformers 5.
  config["tokenizer_class"] = "PreTrainedTokenizerFast";

  try {
    return {tokenizer.dump(2) + "\n", config.dump(2) + "\n", specials.dump(2) + "\n"};
  } catch (const json::type_error& e) {
    throw FormatError(v.source, std::string("a token or the chat template is not valid UTF-8, which tokenizer.json "
                                            "cannot hold (") + e.what() + ")");
  }
}

}  // namespace lwb::data
