#include "core/data/hf_tokenizer.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "core/common/errors.h"
#include "core/common/json_depth.h"
#include "core/data/bpe_tokenizer.h"
#include "core/data/sentencepiece_tokenizer.h"

namespace lwb::data {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

json parse_json(std::string_view text, const std::string& source) {
  check_json_depth(text, source);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw FormatError(source, std::string("not valid JSON: ") + e.what());
  }
}

json read_json(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw FormatError(file.string(), "cannot be read");
  std::stringstream buf;
  buf << in.rdbuf();
  return parse_json(buf.str(), file.string());
}

// Reads tokenizer.json with messages that name the file and the JSON path.
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}
  const std::string& source() const { return source_; }

  [[noreturn]] void fail(const std::string& where, const std::string& what) const {
    throw FormatError(source_, where + ": " + what);
  }
  const json& member(const json& j, const std::string& where, const char* key) const {
    if (!j.is_object()) fail(where, "expected an object");
    const auto it = j.find(key);
    if (it == j.end()) fail(where, std::string("missing \"") + key + "\"");
    return *it;
  }
  std::string string(const json& j, const std::string& where, const char* key) const {
    const json& v = member(j, where, key);
    if (!v.is_string()) fail(where + "." + key, "expected a string");
    return v.get<std::string>();
  }
  // Absent or null gives `fallback`.
  bool flag(const json& j, const std::string& where, const char* key, bool fallback) const {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) fail(where + "." + key, "expected true or false");
    return it->get<bool>();
  }
  std::int64_t integer(const json& j, const std::string& where) const {
    if (!j.is_number_integer()) fail(where, "expected an integer");
    return j.get<std::int64_t>();
  }
  // A token id; the bound keeps a hostile file from sizing tables at will.
  std::int32_t id(const json& j, const std::string& where) const {
    const std::int64_t id = integer(j, where);
    if (id < 0 || id > 4'000'000) fail(where, "id " + std::to_string(id) + " out of range");
    return static_cast<std::int32_t>(id);
  }
  // Calls f(element, its path) for each element of the array j[key].
  template <class F>
  void each(const json& j, const std::string& where, const char* key, F&& f) const {
    const json& list = member(j, where, key);
    if (!list.is_array()) fail(where + "." + key, "expected an array");
    for (std::size_t i = 0; i < list.size(); ++i) f(list[i], where + "." + key + "[" + std::to_string(i) + "]");
  }
  [[noreturn]] void unsupported(const std::string& where, const std::string& what, const char* supported) const {
    fail(where, "unsupported " + what + " (this build runs " + supported + ")");
  }

 private:
  std::string source_;
};

std::string regex_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80 && !std::isalnum(u)) out += '\\';
    out += c;
  }
  return out;
}

// A Split/Replace "pattern": {"Regex": "..."} or {"String": "..."}.
std::string pattern_regex(const Reader& r, const json& j, const std::string& where) {
  const json& p = r.member(j, where, "pattern");
  if (p.contains("Regex")) return r.string(p, where + ".pattern", "Regex");
  return regex_escape(r.string(p, where + ".pattern", "String"));
}

void parse_normalizer(const Reader& r, const json& j, const std::string& where, std::vector<NormalizerStep>& out) {
  if (j.is_null()) return;
  const std::string type = r.string(j, where, "type");
  const std::pair<const char*, NormalForm> forms[] = {
      {"NFC", NormalForm::nfc}, {"NFD", NormalForm::nfd}, {"NFKC", NormalForm::nfkc}, {"NFKD", NormalForm::nfkd}};
  for (const auto& [name, form] : forms)
    if (type == name) {
      out.push_back({NormalizerStep::Kind::unicode, form, {}, {}, {}});
      return;
    }
  if (type == "Sequence") {
    r.each(j, where, "normalizers", [&](const json& e, const std::string& at) { parse_normalizer(r, e, at, out); });
  } else if (type == "Prepend") {
    out.push_back({NormalizerStep::Kind::prepend, {}, r.string(j, where, "prepend"), {}, {}});
  } else if (type == "Replace") {
    NormalizerStep s;
    s.kind = NormalizerStep::Kind::replace;
    s.with = r.string(j, where, "content");
    const json& p = r.member(j, where, "pattern");
    if (p.contains("Regex"))
      s.regex.emplace(r.string(p, where + ".pattern", "Regex"), r.source());
    else
      s.text = r.string(p, where + ".pattern", "String");
    out.push_back(std::move(s));
  } else {
    r.unsupported(where + ".type", "normalizer \"" + type + "\"", "NFC, NFD, NFKC, NFKD, Prepend, Replace, Sequence");
  }
}

PreTokenizerStep split_step(const Reader& r, const std::string& pattern, SplitBehavior behavior, bool invert) {
  PreTokenizerStep s;
  s.regex.emplace(pattern, r.source());
  s.behavior = behavior;
  s.invert = invert;
  return s;
}

void parse_pre_tokenizer(const Reader& r, const json& j, const std::string& where, BpeSpec& spec) {
  if (j.is_null()) return;
  const std::string type = r.string(j, where, "type");
  if (spec.byte_level && type != "Sequence")
    r.unsupported(where, "pre-tokenizer after ByteLevel", "ByteLevel as the last step");
  if (type == "Sequence") {
    r.each(j, where, "pretokenizers",
           [&](const json& e, const std::string& at) { parse_pre_tokenizer(r, e, at, spec); });
  } else if (type == "ByteLevel") {
    if (r.flag(j, where, "add_prefix_space", true)) {
      PreTokenizerStep s;
      s.kind = PreTokenizerStep::Kind::prefix_space;
      spec.pre_tokenizer.push_back(std::move(s));
    }
    if (r.flag(j, where, "use_regex", true))
      spec.pre_tokenizer.push_back(split_step(r, kGpt2Pattern, SplitBehavior::isolated, false));
    spec.byte_level = true;
  } else if (type == "Split") {
    const std::string behavior = r.string(j, where, "behavior");
    const std::pair<const char*, SplitBehavior> behaviors[] = {
        {"Isolated", SplitBehavior::isolated},
        {"Removed", SplitBehavior::removed},
        {"MergedWithPrevious", SplitBehavior::merged_with_previous},
        {"MergedWithNext", SplitBehavior::merged_with_next},
        {"Contiguous", SplitBehavior::contiguous}};
    const auto* hit = std::find_if(std::begin(behaviors), std::end(behaviors),
                                   [&](const auto& b) { return behavior == b.first; });
    if (hit == std::end(behaviors)) r.fail(where + ".behavior", "unknown behavior \"" + behavior + "\"");
    spec.pre_tokenizer.push_back(
        split_step(r, pattern_regex(r, j, where), hit->second, r.flag(j, where, "invert", false)));
  } else if (type == "Digits") {
    // Runs of digits are pieces of their own, or each digit alone.
    const bool individual = r.flag(j, where, "individual_digits", false);
    spec.pre_tokenizer.push_back(split_step(r, individual ? "\\p{N}" : "\\p{N}+", SplitBehavior::isolated, false));
  } else if (type == "Metaspace") {
    PreTokenizerStep s;
    s.kind = PreTokenizerStep::Kind::metaspace;
    s.replacement = r.string(j, where, "replacement");
    if (j.contains("prepend_scheme")) {
      const std::string scheme = r.string(j, where, "prepend_scheme");
      if (scheme == "always") s.prepend = PrependScheme::always;
      else if (scheme == "first") s.prepend = PrependScheme::first;
      else if (scheme == "never") s.prepend = PrependScheme::never;
      else r.fail(where + ".prepend_scheme", "unknown scheme \"" + scheme + "\"");
    } else {
      s.prepend = r.flag(j, where, "add_prefix_space", true) ? PrependScheme::always : PrependScheme::never;
    }
    s.split_words = r.flag(j, where, "split", true);
    spec.pre_tokenizer.push_back(std::move(s));
  } else {
    r.unsupported(where + ".type", "pre-tokenizer \"" + type + "\"", "ByteLevel, Split, Digits, Metaspace, Sequence");
  }
}

struct DecoderInfo {
  PieceDecoding pieces;
  bool strip_leading_space = false;
};

void parse_decoder(const Reader& r, const json& j, const std::string& where, DecoderInfo& d) {
  if (j.is_null()) return;
  const std::string type = r.string(j, where, "type");
  if (type == "Sequence") {
    r.each(j, where, "decoders", [&](const json& e, const std::string& at) { parse_decoder(r, e, at, d); });
  } else if (type == "ByteLevel") {
    d.pieces.byte_level = true;
  } else if (type == "ByteFallback") {
    d.pieces.byte_tokens = true;
  } else if (type == "Fuse") {
    // Joining the tokens is what decode does anyway.
  } else if (type == "Replace") {
    const json& p = r.member(j, where, "pattern");
    if (!p.contains("String") || r.string(j, where, "content") != " ")
      r.unsupported(where, "Replace decoder", "Replace(String, \" \")");
    d.pieces.space_marker = r.string(p, where + ".pattern", "String");
  } else if (type == "Strip") {
    const json& start = r.member(j, where, "start");
    const json& stop = r.member(j, where, "stop");
    if (r.string(j, where, "content") != " " || r.integer(start, where + ".start") > 1 ||
        r.integer(stop, where + ".stop") != 0)
      r.unsupported(where, "Strip decoder", "Strip(\" \", start <= 1, stop 0)");
    d.strip_leading_space = r.integer(start, where + ".start") == 1;
  } else if (type == "Metaspace") {
    d.pieces.space_marker = r.string(j, where, "replacement");
    const bool prepends = j.contains("prepend_scheme") ? r.string(j, where, "prepend_scheme") != "never"
                                                       : r.flag(j, where, "add_prefix_space", true);
    d.strip_leading_space = d.strip_leading_space || prepends;
  } else {
    r.unsupported(where + ".type", "decoder \"" + type + "\"",
                  "ByteLevel, ByteFallback, Fuse, Replace, Strip, Metaspace, Sequence");
  }
}

// The ids a post-processor puts before and after a single text.
void parse_post_processor(const Reader& r, const json& j, const std::string& where, const PieceMap& ids,
                          VocabSpec& v) {
  if (j.is_null()) return;
  const std::string type = r.string(j, where, "type");
  const auto id_of = [&](const std::string& token, const std::string& at) {
    const auto it = ids.find(token);
    if (it == ids.end()) r.fail(at, "token \"" + token + "\" is not in the vocabulary");
    return it->second;
  };
  if (type == "Sequence") {
    r.each(j, where, "processors",
           [&](const json& e, const std::string& at) { parse_post_processor(r, e, at, ids, v); });
  } else if (type == "ByteLevel") {
    // Only trims offsets, which this engine does not report.
  } else if (type == "TemplateProcessing") {
    const json& specials = r.member(j, where, "special_tokens");
    bool after = false;  // past the text ($A)
    r.each(j, where, "single", [&](const json& e, const std::string& at) {
      if (e.contains("Sequence")) {
        after = true;
        return;
      }
      const std::string name = r.string(r.member(e, at, "SpecialToken"), at + ".SpecialToken", "id");
      const std::string token_at = where + ".special_tokens." + name;
      r.each(r.member(specials, where + ".special_tokens", name.c_str()), token_at, "ids",
             [&](const json& id, const std::string& id_at) {
               (after ? v.suffix : v.prefix).push_back(r.id(id, id_at));
             });
    });
  } else if (type == "RobertaProcessing" || type == "BertProcessing") {
    for (const char* key : {"cls", "sep"}) {
      const json& pair = r.member(j, where, key);
      if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string())
        r.fail(where + "." + key, "expected [token, id]");
      (key[0] == 'c' ? v.prefix : v.suffix).push_back(id_of(pair[0].get<std::string>(), where + "." + key));
    }
  } else {
    r.unsupported(where + ".type", "post-processor \"" + type + "\"",
                  "TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence");
  }
}

void set_piece(VocabSpec& v, std::int32_t id, const std::string& piece) {
  const auto i = static_cast<std::size_t>(id);
  if (i >= v.pieces.size()) v.pieces.resize(i + 1);
  v.pieces[i] = piece;
}

// An added token as tokenizer.json and tokenizer_config.json spell it.
AddedToken added_token(const Reader& r, const json& t, const std::string& at, std::int32_t id) {
  AddedToken a;
  a.id = id;
  a.content = r.string(t, at, "content");
  a.special = r.flag(t, at, "special", false);
  a.lstrip = r.flag(t, at, "lstrip", false);
  a.rstrip = r.flag(t, at, "rstrip", false);
  a.single_word = r.flag(t, at, "single_word", false);
  return a;
}

// The "model" object of a BPE tokenizer.json: vocabulary and merges.
void parse_bpe_model(const Reader& r, const json& m, BpeSpec& spec, std::string& unk_token) {
  const std::string where = "model";
  const json& vocab = r.member(m, where, "vocab");
  if (!vocab.is_object()) r.fail(where + ".vocab", "expected an object of token: id");
  VocabSpec& v = spec.vocab;
  for (const auto& [piece, id_json] : vocab.items()) {
    set_piece(v, r.id(id_json, where + ".vocab." + piece), piece);
  }
  r.each(m, where, "merges", [&](const json& e, const std::string& at) {
    if (e.is_string()) {
      const std::string s = e.get<std::string>();
      const std::size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
        r.fail(at, "expected \"left right\", got \"" + s + "\"");
      spec.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      spec.merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
    } else {
      r.fail(at, "expected \"left right\" or [\"left\", \"right\"]");
    }
  });
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (m.contains(key) && !m[key].is_null() && m[key] != "")
      r.unsupported(where + "." + key, "BPE option", "BPE without subword prefixes or suffixes");
  if (m.contains("dropout") && !m["dropout"].is_null() && m["dropout"] != 0.0)
    r.unsupported(where + ".dropout", "BPE dropout (random merges)", "deterministic BPE");
  spec.byte_fallback = r.flag(m, where, "byte_fallback", false);
  spec.fuse_unk = r.flag(m, where, "fuse_unk", false);
  spec.ignore_merges = r.flag(m, where, "ignore_merges", false);
  if (m.contains("unk_token") && !m["unk_token"].is_null()) unk_token = r.string(m, where, "unk_token");
}

PieceMap piece_map(const VocabSpec& v) {
  PieceMap ids;
  for (std::size_t id = 0; id < v.pieces.size(); ++id)
    if (!v.pieces[id].empty()) ids.emplace(v.pieces[id], static_cast<std::int32_t>(id));
  return ids;
}

// A tokenizer.json as a BpeSpec; FormatError for a model other than BPE.
BpeSpec parse_tokenizer_json(const std::string& source, const json& j) {
  const Reader r(source);
  if (!j.is_object()) r.fail("top level", "expected an object");
  BpeSpec spec;
  spec.vocab.source = r.source();
  const json& model = r.member(j, "top level", "model");
  const std::string type = model.contains("type") ? r.string(model, "model", "type") : "BPE";
  if (type != "BPE") r.unsupported("model.type", "model \"" + type + "\"", "BPE");
  std::string unk_token;
  parse_bpe_model(r, model, spec, unk_token);
  VocabSpec& v = spec.vocab;

  if (j.contains("added_tokens"))
    r.each(j, "top level", "added_tokens", [&](const json& e, const std::string& at) {
      AddedToken t = added_token(r, e, at, r.id(r.member(e, at, "id"), at + ".id"));
      set_piece(v, t.id, t.content);
      v.added.push_back(std::move(t));
    });

  parse_normalizer(r, j.value("normalizer", json()), "normalizer", spec.normalizer);
  parse_pre_tokenizer(r, j.value("pre_tokenizer", json()), "pre_tokenizer", spec);
  DecoderInfo decoder;
  parse_decoder(r, j.value("decoder", json()), "decoder", decoder);
  if (decoder.pieces.byte_level != spec.byte_level)
    r.fail("decoder", spec.byte_level ? "a ByteLevel pre-tokenizer needs a ByteLevel decoder"
                                      : "a ByteLevel decoder needs a ByteLevel pre-tokenizer");
  v.strip_leading_space = decoder.strip_leading_space;
  v.piece_bytes.resize(v.pieces.size());
  for (std::size_t id = 0; id < v.pieces.size(); ++id) v.piece_bytes[id] = decode_piece(v.pieces[id], decoder.pieces);
  for (const AddedToken& t : v.added) v.piece_bytes[static_cast<std::size_t>(t.id)] = t.content;

  const PieceMap ids = piece_map(v);
  parse_post_processor(r, j.value("post_processor", json()), "post_processor", ids, v);
  if (!unk_token.empty()) {
    const auto it = ids.find(unk_token);
    if (it == ids.end()) r.fail("model.unk_token", "\"" + unk_token + "\" is not in the vocabulary");
    v.unk = it->second;
  }
  if (!v.prefix.empty()) v.bos = v.prefix.front();
  if (!v.suffix.empty()) v.eos = v.suffix.back();
  return spec;
}

// tokenizer_config.json / special_tokens_map.json: a token is "text" or {"content": "text", ...}.
std::optional<std::string> config_token(const json& config, const char* key) {
  const auto it = config.find(key);
  if (it == config.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  return std::nullopt;
}

std::optional<bool> config_flag(const json& config, const char* key) {
  const auto it = config.find(key);
  if (it == config.end() || !it->is_boolean()) return std::nullopt;
  return it->get<bool>();
}

// What the folder's JSON files say about special tokens.
struct FolderConfig {
  std::optional<std::string> tokens[4];  // bos, eos, pad, unk
  std::optional<bool> add_bos, add_eos;
  std::vector<std::int32_t> stop;        // generation_config.json's eos_token_id
  std::vector<AddedToken> added;         // tokenizer_config.json's added_tokens_decoder
};

constexpr const char* kTokenKeys[4] = {"bos_token", "eos_token", "pad_token", "unk_token"};

FolderConfig read_folder_config(const fs::path& dir) {
  FolderConfig c;
  for (const char* name : {"special_tokens_map.json", "tokenizer_config.json"}) {  // the second wins
    if (!fs::exists(dir / name)) continue;
    const json j = read_json(dir / name);
    if (!j.is_object()) throw FormatError((dir / name).string(), "expected a JSON object");
    for (int k = 0; k < 4; ++k)
      if (auto t = config_token(j, kTokenKeys[k])) c.tokens[k] = t;
    if (auto f = config_flag(j, "add_bos_token")) c.add_bos = f;
    if (auto f = config_flag(j, "add_eos_token")) c.add_eos = f;
    const auto decoder = j.find("added_tokens_decoder");
    if (decoder == j.end() || !decoder->is_object()) continue;
    const Reader r((dir / name).string());
    for (const auto& [key, t] : decoder->items()) {
      const std::string at = "added_tokens_decoder." + key;
      std::int64_t id = -1;
      const auto [end, err] = std::from_chars(key.data(), key.data() + key.size(), id);
      if (err != std::errc() || end != key.data() + key.size()) r.fail(at, "the key is not an id");
      c.added.push_back(added_token(r, t, at, r.id(json(id), at)));
    }
  }
  if (fs::exists(dir / "generation_config.json")) {
    const json g = read_json(dir / "generation_config.json");
    const auto it = g.find("eos_token_id");
    if (it != g.end() && it->is_number_integer()) c.stop.push_back(it->get<std::int32_t>());
    if (it != g.end() && it->is_array())
      for (const json& id : *it)
        if (id.is_number_integer()) c.stop.push_back(id.get<std::int32_t>());
  }
  return c;
}

// add_bos_token / add_eos_token, where the config sets them, decide whether
// bos leads and eos ends, as transformers rebuilds the post-processor.
void apply_flag(std::optional<bool> flag, std::int32_t id, std::vector<std::int32_t>& ids, bool front) {
  if (!flag || id < 0) return;
  const bool has = !ids.empty() && (front ? ids.front() : ids.back()) == id;
  if (*flag && !has) ids.insert(front ? ids.begin() : ids.end(), id);
  if (!*flag && has) ids.erase(front ? ids.begin() : ids.end() - 1);
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer_json(const fs::path& file) {
  return std::make_unique<BpeTokenizer>("bpe", parse_tokenizer_json(file.string(), read_json(file)));
}

std::unique_ptr<Tokenizer> tokenizer_from_json(std::string_view text, const std::string& source) {
  return std::make_unique<BpeTokenizer>("bpe", parse_tokenizer_json(source, parse_json(text, source)));
}

std::unique_ptr<Tokenizer> load_hf_tokenizer(const fs::path& dir) {
  const fs::path json_file = dir / "tokenizer.json", model_file = dir / "tokenizer.model";
  const bool has_json = fs::exists(json_file), has_model = fs::exists(model_file);
  if (!has_json && !has_model)
    throw FormatError(dir.string(), "no tokenizer.json or tokenizer.model in this folder");
  const FolderConfig config = read_folder_config(dir);

  // A tokenizer.json whose model this build does not run (Unigram,
  // WordPiece) still leaves tokenizer.model to try.
  std::optional<json> j;
  if (has_json) {
    j = read_json(json_file);
    const bool bpe = j->is_object() && j->contains("model") && (*j)["model"].is_object() &&
                     (*j)["model"].value("type", std::string("BPE")) == "BPE";
    if (!bpe && has_model) j.reset();
  }
  if (!j) {
    SentencePieceOptions o;
    o.added = config.added;
    o.bos = config.tokens[0], o.eos = config.tokens[1], o.pad = config.tokens[2], o.unk = config.tokens[3];
    o.add_bos = config.add_bos.value_or(true);
    o.add_eos = config.add_eos.value_or(false);
    o.stop = config.stop;
    return std::make_unique<SentencePieceTokenizer>(model_file, o);
  }

  BpeSpec spec = parse_tokenizer_json(json_file.string(), *j);
  VocabSpec& v = spec.vocab;
  const PieceMap ids = piece_map(v);
  std::int32_t* targets[4] = {&v.bos, &v.eos, &v.pad, &v.unk};
  for (int k = 0; k < 4; ++k) {
    if (!config.tokens[k]) continue;
    const auto it = ids.find(*config.tokens[k]);
    if (it == ids.end())
      throw FormatError((dir / "tokenizer_config.json").string(),
                        std::string(kTokenKeys[k]) + " \"" + *config.tokens[k] + "\" is not in tokenizer.json");
    *targets[k] = it->second;
  }
  apply_flag(config.add_bos, v.bos, v.prefix, true);
  apply_flag(config.add_eos, v.eos, v.suffix, false);
  v.stop = config.stop;
  return std::make_unique<BpeTokenizer>("bpe", std::move(spec));
}

}  // namespace lwb::data
