// Real tokenizers against Hugging Face: for each family, the ids of 2,000
// varied texts must equal the goldens transformers gave
// (tests/reference/make_tokenizer_golden.py), through every way this engine
// reads the family (tokenizer.json, tokenizer.model, GGUF metadata); decode
// must give the text back; special tokens only where asked; bad files named.
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/common/errors.h"
#include "core/data/chat_template.h"
#include "core/data/gguf_to_hf.h"
#include "core/data/gguf_tokenizer.h"
#include "core/data/hf_tokenizer.h"
#include "core/data/sentencepiece_tokenizer.h"
#include "core/data/tokenizer.h"
#include "core/data/unicode.h"
#include "core/format/gguf.h"
#include "core/io/gguf_model.h"
#include "io_fixtures.h"

using namespace lwb;
using namespace lwb::data;
using nlohmann::json;

namespace {

using Ids = std::vector<std::int32_t>;
const std::string kDir = std::string(LWB_TEST_DATA_DIR) + "/tokenizers/";

using test::read_text;
using test::write_text;

const std::vector<std::string>& texts() {
  static const std::vector<std::string> all = [] {
    std::vector<std::string> t;
    std::istringstream in(read_text(kDir + "texts.jsonl"));
    for (std::string line; std::getline(in, line);) t.push_back(json::parse(line).get<std::string>());
    return t;
  }();
  return all;
}

struct Golden {
  std::vector<Ids> plain;
  std::map<std::size_t, Ids> special;  // where it is not prefix + plain + suffix
  Ids prefix, suffix;
};

Golden read_golden(const std::string& family) {
  const std::string packed = read_text(kDir + family + "/golden.json.zlib");
  const QByteArray text = qUncompress(QByteArray(packed.data(), static_cast<qsizetype>(packed.size())));
  const json j = json::parse(text.begin(), text.end());
  Golden g;
  g.plain = j["plain"].get<std::vector<Ids>>();
  g.prefix = j["prefix"].get<Ids>();
  g.suffix = j["suffix"].get<Ids>();
  for (const auto& [k, v] : j["special"].items()) g.special[std::stoul(k)] = v.get<Ids>();
  return g;
}

std::string str(const Ids& v) {
  std::ostringstream s;
  for (std::size_t i = 0; i < v.size(); ++i) s << (i ? "," : "[") << v[i];
  s << "]";
  return v.empty() ? "[]" : s.str();
}

// Compares every text's ids with the golden: plain (no specials added or
// parsed) and, unless `plain_only`, with add_special + parse_special. Prints
// the agreement and fails naming the first differing texts.
void check_golden(const Tokenizer& tok, const std::string& family, const std::string& via, bool plain_only = false) {
  const Golden g = read_golden(family);
  const auto& t = texts();
  QCOMPARE(g.plain.size(), t.size());
  std::size_t mismatches = 0;
  std::string first;
  const auto compare = [&](std::size_t i, const Ids& got, const Ids& want, const char* mode) {
    if (got == want) return;
    if (++mismatches <= 3)
      first += "\n  text " + std::to_string(i) + " (" + mode + ") " + json(t[i]).dump() + "\n    want " + str(want) +
               "\n    got  " + str(got);
  };
  for (std::size_t i = 0; i < t.size(); ++i) {
    compare(i, tok.encode(t[i]), g.plain[i], "plain");
    if (plain_only) continue;
    Ids want = g.prefix;
    want.insert(want.end(), g.plain[i].begin(), g.plain[i].end());
    want.insert(want.end(), g.suffix.begin(), g.suffix.end());
    if (const auto it = g.special.find(i); it != g.special.end()) want = it->second;
    compare(i, tok.encode(t[i], {.add_special = true, .parse_special = true}), want, "special");
  }
  qInfo("%s via %s: %zu texts, %zu mismatches", family.c_str(), via.c_str(), t.size(), mismatches);
  QVERIFY2(mismatches == 0,
           (family + " via " + via + ": " + std::to_string(mismatches) + " mismatches" + first).c_str());
}

// decode(encode(x)) == x for every text; NFC(x) for a tokenizer that
// normalizes to NFC first (Qwen2), as Hugging Face's does too.
void check_round_trip(const Tokenizer& tok, const std::string& what, bool nfc = false) {
  std::size_t bad = 0;
  std::string first, want;
  for (const std::string& text : texts()) {
    const std::string back = tok.decode(tok.encode(text));
    if (nfc)
      normalize(NormalForm::nfc, text, want);
    else
      want = text;
    if (back != want && ++bad == 1) first = json(text).dump() + " came back as " + json(back).dump();
  }
  QVERIFY2(bad == 0, (what + ": " + std::to_string(bad) + " texts do not come back; " + first).c_str());
}

// The vectors llama.cpp's converter writes for a byte-level tokenizer.json
// (convert_hf_to_gguf.py: tokens by id, added tokens CONTROL when special
// else USER_DEFINED, merges as "left right"), read here straight from the
// JSON so the GGUF path is checked independently of the tokenizer.json reader.
GgufVocab gguf_from_tokenizer_json(const std::string& family, const std::string& pre, const Tokenizer& hf) {
  const json j = json::parse(read_text(kDir + family + "/tokenizer.json"));
  GgufVocab v;
  v.source = family + " (as GGUF)";
  v.model = "gpt2";
  v.pre = pre;
  for (const auto& [piece, id] : j["model"]["vocab"].items()) {
    const auto i = id.get<std::size_t>();
    if (i >= v.tokens.size()) v.tokens.resize(i + 1), v.token_types.resize(i + 1, kGgufNormal);
    v.tokens[i] = piece;
  }
  for (const json& a : j["added_tokens"]) {
    const auto i = a["id"].get<std::size_t>();
    if (i >= v.tokens.size()) v.tokens.resize(i + 1), v.token_types.resize(i + 1, kGgufNormal);
    v.tokens[i] = a["content"].get<std::string>();
    v.token_types[i] = a["special"].get<bool>() ? kGgufControl : kGgufUserDefined;
  }
  for (const json& m : j["model"]["merges"])
    v.merges.push_back(m.is_string() ? m.get<std::string>() : m[0].get<std::string>() + " " + m[1].get<std::string>());
  v.bos = hf.bos(), v.eos = hf.eos(), v.pad = hf.pad(), v.unk = hf.unk();
  return v;
}

// A gguf_vocab.json dump (the script's, of a SentencePiece model or of the
// real SmolLM2 GGUF) as the GGUF reader would fill it.
GgufVocab gguf_from_dump(const std::string& path) {
  const json j = json::parse(read_text(path));
  GgufVocab v;
  v.source = path;
  v.model = j.at("model").get<std::string>();
  v.pre = j.value("pre", std::string());
  v.tokens = j.at("tokens").get<std::vector<std::string>>();
  v.token_types = j.value("token_types", std::vector<std::int32_t>());
  v.scores = j.value("scores", std::vector<float>());
  v.merges = j.value("merges", std::vector<std::string>());
  v.bos = j.value("bos", -1), v.eos = j.value("eos", -1), v.pad = j.value("pad", -1), v.unk = j.value("unk", -1);
  if (j.contains("add_bos")) v.add_bos = j["add_bos"].get<bool>();
  if (j.contains("add_space_prefix")) v.add_space_prefix = j["add_space_prefix"].get<bool>();
  return v;
}

// The vocabulary as the Hugging Face folder a merged export of a GGUF base
// carries (gguf_to_hf_tokenizer), read back as any folder is.
std::unique_ptr<Tokenizer> as_hf_folder(const GgufVocab& v, const QTemporaryDir& dir) {
  const HfTokenizerFiles files = gguf_to_hf_tokenizer(v, std::nullopt, 4096);
  const std::string d = dir.path().toStdString();
  write_text(d + "/tokenizer.json", files.tokenizer_json);
  write_text(d + "/tokenizer_config.json", files.tokenizer_config_json);
  write_text(d + "/special_tokens_map.json", files.special_tokens_map_json);
  return load_hf_tokenizer(d);
}

// The folder's tokenizer gives the GGUF tokenizer's ids on every text, with
// and without specials, and the same special ids.
void check_same_as_gguf(const Tokenizer& folder, const Tokenizer& gguf, const std::string& what) {
  QCOMPARE(folder.bos(), gguf.bos());
  QCOMPARE(folder.eos(), gguf.eos());
  QCOMPARE(folder.pad(), gguf.pad());
  QCOMPARE(folder.unk(), gguf.unk());
  std::size_t mismatches = 0;
  std::string first;
  for (const std::string& text : texts())
    for (const EncodeOptions o : {EncodeOptions{}, EncodeOptions{.add_special = true, .parse_special = true}})
      if (folder.encode(text, o) != gguf.encode(text, o) && ++mismatches == 1)
        first = json(text).dump() + ": " + str(folder.encode(text, o)) + " vs " + str(gguf.encode(text, o));
  qInfo("%s: exported tokenizer.json vs the GGUF vocabulary, %zu texts x 2 modes, %zu mismatches", what.c_str(),
        texts().size(), mismatches);
  QVERIFY2(mismatches == 0, (what + ": " + std::to_string(mismatches) + " mismatches, first " + first).c_str());
}

#define EXPECT_FORMAT_ERROR(expr, needle)                                                                  \
  do {                                                                                                     \
    const std::string message_ = test::format_error([&] { (void)(expr); });                                \
    QVERIFY2(!message_.empty() && message_.find(needle) != std::string::npos,                              \
             ("expected a FormatError mentioning '" + std::string(needle) + "', got '" + message_ + "'").c_str()); \
  } while (0)

}  // namespace

class TestTokenizers : public QObject {
  Q_OBJECT

 private slots:
  void byteLevelFamiliesMatchTransformers_data() {
    QTest::addColumn<QString>("family");
    QTest::addColumn<QString>("pre");  // tokenizer.ggml.pre llama.cpp writes for it
    QTest::newRow("gpt2") << "gpt2" << "gpt-2";
    QTest::newRow("llama3") << "llama3" << "llama-bpe";
    QTest::newRow("smollm") << "smollm" << "smollm";
    QTest::newRow("qwen2") << "qwen2" << "qwen2";
  }
  void byteLevelFamiliesMatchTransformers() {
    QFETCH(QString, family);
    QFETCH(QString, pre);
    const std::string f = family.toStdString();
    const auto hf = load_hf_tokenizer(kDir + f);
    check_golden(*hf, f, "tokenizer.json");
    check_round_trip(*hf, f, f == "qwen2");
    const GgufVocab vocab = gguf_from_tokenizer_json(f, pre.toStdString(), *hf);
    const auto gguf = make_gguf_tokenizer(vocab);
    check_golden(*gguf, f, "GGUF pre " + pre.toStdString());
    check_round_trip(*gguf, f + " (GGUF)", f == "qwen2");
    // Written out as a Hugging Face folder, as a merged export of a GGUF base does.
    QTemporaryDir tmp;
    const auto folder = as_hf_folder(vocab, tmp);
    check_golden(*folder, f, "GGUF pre " + pre.toStdString() + " as tokenizer.json");
    check_same_as_gguf(*folder, *gguf, f);
  }

  void sentencePieceBpeMatchesTransformers() {
    // The same Llama-2-style model three ways: its tokenizer.json, its
    // tokenizer.model through the SentencePiece library, and its GGUF
    // vocabulary (scores) through this engine's own merge loop.
    const auto hf = load_hf_tokenizer(kDir + "llama2");
    check_golden(*hf, "llama2", "tokenizer.json");
    check_round_trip(*hf, "llama2");
    const SentencePieceTokenizer sp(kDir + "llama2/tokenizer.model", {});
    check_golden(sp, "llama2", "tokenizer.model");
    check_round_trip(sp, "llama2 (tokenizer.model)");
    const GgufVocab vocab = gguf_from_dump(kDir + "llama2/gguf_vocab.json");
    const auto gguf = make_gguf_tokenizer(vocab);
    check_golden(*gguf, "llama2", "GGUF llama");
    check_round_trip(*gguf, "llama2 (GGUF)");
    // As a merged export of a GGUF base writes it: merges ranked by score.
    QTemporaryDir tmp;
    const auto folder = as_hf_folder(vocab, tmp);
    check_golden(*folder, "llama2", "GGUF llama as tokenizer.json");
    check_round_trip(*folder, "llama2 (GGUF as tokenizer.json)");
    check_same_as_gguf(*folder, *gguf, "llama2");
    // Without the space prefix (add_space_prefix false), the same again.
    GgufVocab bare = vocab;
    bare.add_space_prefix = false;
    QTemporaryDir tmp2;
    check_same_as_gguf(*as_hf_folder(bare, tmp2), *make_gguf_tokenizer(bare), "llama2 without the space prefix");
    // transformers 5 writes the same vocabulary with a Metaspace
    // pre-tokenizer that prefixes only the start of the text.
    check_golden(*load_hf_tokenizer(kDir + "llama2-metaspace"), "llama2-metaspace", "tokenizer.json");
    // For a SentencePiece model it has no class for, transformers 5 writes
    // this text preparation instead (copied from its output); it gives the
    // model the same strings as the legacy one, so the same ids.
    json generic = json::parse(read_text(kDir + "llama2/tokenizer.json"));
    generic["normalizer"] = json::parse(R"({"type": "Sequence", "normalizers": [
        {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
        {"type": "Replace", "pattern": {"Regex": "\\A▁"}, "content": "▁▁"}]})");
    generic["pre_tokenizer"] = json::parse(R"({"type": "Sequence", "pretokenizers": [
        {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": false}]})");
    check_golden(*tokenizer_from_json(generic.dump(), "generic"), "llama2", "transformers 5's generic form", true);
  }

  void sentencePieceUnigramMatchesTheLibrary() {
    // Only tokenizer.model in the folder; tokenizer_config.json asks for eos, not bos.
    // Its golden is the library's own encode, which knows no special strings.
    const auto tok = load_hf_tokenizer(kDir + "unigram");
    QCOMPARE(tok->name(), std::string("sentencepiece"));
    check_golden(*tok, "unigram", "tokenizer.model", true);
    QCOMPARE(tok->encode("x", {.add_special = true}).back(), tok->eos());
    QVERIFY(tok->encode("x", {.add_special = true}).front() != tok->bos());
  }

  void realSmolLM2Vocabulary() {
    // The 49,152-token vocabulary of SmolLM2-135M-Instruct's GGUF, dumped by
    // make_tokenizer_golden.py --smollm2 (2 MB, not committed; its goldens are).
    const char* dir = std::getenv("LWB_SMOLLM2_VOCAB");
    if (!dir || !QFile::exists(QString(dir) + "/gguf_vocab.json"))
      QSKIP("set LWB_SMOLLM2_VOCAB to the folder make_tokenizer_golden.py --smollm2 wrote");
    const auto tok = make_gguf_tokenizer(gguf_from_dump(std::string(dir) + "/gguf_vocab.json"));
    QCOMPARE(tok->vocab_size(), 49152);
    check_golden(*tok, "smollm2-135m", "GGUF");
    check_round_trip(*tok, "smollm2-135m");
  }

  // The real SmolLM2-135M-Instruct GGUF's tokenizer written as the files of a
  // merged export: the same ids as the GGUF itself on every text, and as
  // SmolLM2's own tokenizer (the golden); the same chat template.
  void realSmolLM2GgufAsHfFolder() {
    const char* path = std::getenv("LWB_SMOLLM2_GGUF");
    if (!path || !QFile::exists(path)) QSKIP("set LWB_SMOLLM2_GGUF to SmolLM2-135M-Instruct.Q4_1.gguf");
    const format::GgufFile file = format::GgufFile::open(path);
    QTemporaryDir tmp;
    const std::string dir = tmp.path().toStdString();
    QVERIFY(io::write_gguf_tokenizer_as_hf(file, dir, 8192));
    const auto folder = load_hf_tokenizer(dir);
    const auto gguf = make_gguf_tokenizer(*io::read_gguf_vocab(file));
    QCOMPARE(folder->vocab_size(), 49152);
    check_same_as_gguf(*folder, *gguf, "SmolLM2-135M-Instruct");
    check_golden(*folder, "smollm2-135m", "the GGUF as tokenizer.json");
    const auto piece = [&](std::int32_t id) { return id < 0 ? std::string() : gguf->id_to_piece(id); };
    const ChatTemplate own(*io::gguf_chat_template(file), "gguf",
                           {piece(gguf->bos()), piece(gguf->eos()), piece(gguf->unk()), piece(gguf->pad())});
    const ChatTemplate exported = load_hf_chat_template(dir);
    const std::vector<ChatMessage> chat = {{"user", "Hi"}, {"assistant", "Hello!"}, {"user", "2+2?"}};
    QCOMPARE(exported.render(chat, {.add_generation_prompt = true}), own.render(chat, {.add_generation_prompt = true}));
  }

  void ggufVocabularyAsHfFiles() {
    // What tokenizer_config.json and special_tokens_map.json say.
    GgufVocab v = gguf_from_dump(kDir + "llama2/gguf_vocab.json");
    v.pad = 2;
    const HfTokenizerFiles files = gguf_to_hf_tokenizer(v, std::string("{{ bos_token }}x"), 2048);
    const json config = json::parse(files.tokenizer_config_json);
    QCOMPARE(config["bos_token"].get<std::string>(), std::string("<s>"));
    QCOMPARE(config["eos_token"].get<std::string>(), std::string("</s>"));
    QCOMPARE(config["unk_token"].get<std::string>(), std::string("<unk>"));
    QCOMPARE(config["pad_token"].get<std::string>(), std::string("</s>"));
    QCOMPARE(config["add_bos_token"].get<bool>(), true);
    QCOMPARE(config["add_eos_token"].get<bool>(), false);
    QCOMPARE(config["chat_template"].get<std::string>(), std::string("{{ bos_token }}x"));
    QCOMPARE(config["model_max_length"].get<int>(), 2048);
    const json map = json::parse(files.special_tokens_map_json);
    QCOMPARE(map["bos_token"].get<std::string>(), std::string("<s>"));
    QCOMPARE(map.size(), std::size_t{4});
    const json tj = json::parse(files.tokenizer_json);
    QCOMPARE(tj["model"]["type"].get<std::string>(), std::string("BPE"));
    QCOMPARE(tj["model"]["unk_token"].get<std::string>(), std::string("<unk>"));
    QCOMPARE(tj["added_tokens"].size(), std::size_t{3});  // <unk>, <s>, </s>
    // add_eos_token puts eos after the text, both in the file and read back.
    v.add_eos = true;
    QTemporaryDir tmp;
    const auto folder = as_hf_folder(v, tmp);
    QCOMPARE(folder->encode("hi", {.add_special = true}).back(), 2);
    QCOMPARE(folder->encode("hi", {.add_special = true}).front(), 1);

    // Other models are refused by name, as the engine's own loading refuses them.
    v.model = "t5";
    EXPECT_FORMAT_ERROR(gguf_to_hf_tokenizer(v, std::nullopt, 2048), "tokenizer.ggml.model \"t5\" is not supported");
    v.model = "bert";
    EXPECT_FORMAT_ERROR(gguf_to_hf_tokenizer(v, std::nullopt, 2048), "tokenizer.ggml.model \"bert\"");
  }

  void specialTokensOnlyWhereAsked() {
    const auto tok = load_hf_tokenizer(kDir + "smollm");
    const std::int32_t start = tok->token_to_id("<|im_start|>"), end = tok->token_to_id("<|im_end|>");
    QCOMPARE(start, 1);
    QCOMPARE(end, 2);
    QVERIFY(tok->is_special(start));
    QCOMPARE(tok->id_to_piece(start), std::string("<|im_start|>"));
    const std::string text = "<|im_start|>user\nhi<|im_end|>";
    const Ids parsed = tok->encode(text, {.parse_special = true});
    QCOMPARE(parsed.front(), start);
    QCOMPARE(parsed.back(), end);
    const Ids plain = tok->encode(text);
    QVERIFY(std::count(plain.begin(), plain.end(), start) == 0);
    QVERIFY(plain.size() > parsed.size());
    // Decode drops specials unless told to keep them; both ways text comes back.
    QCOMPARE(tok->decode(parsed), std::string("user\nhi"));
    QCOMPARE(tok->decode(parsed, {.skip_special = false}), text);
    QCOMPARE(tok->decode(plain), text);
    // The chat turn end stops generation along with eos.
    const Ids stops = tok->stop_ids();
    QVERIFY(std::find(stops.begin(), stops.end(), end) != stops.end());
    QCOMPARE(tok->eos(), end);
    QCOMPARE(tok->bos(), start);
    QCOMPARE(tok->unk(), 0);

    // Llama-3: bos only with add_special; <|eot_id|> ends turns.
    const auto l3 = load_hf_tokenizer(kDir + "llama3");
    const std::int32_t bot = l3->token_to_id("<|begin_of_text|>");
    QCOMPARE(l3->encode("hi", {.add_special = true}).front(), bot);
    QVERIFY(l3->encode("hi").front() != bot);
    QCOMPARE(l3->eos(), l3->token_to_id("<|eot_id|>"));

    // Qwen2's non-special added token is matched even when specials are not.
    const auto qwen = load_hf_tokenizer(kDir + "qwen2");
    const std::int32_t call = qwen->token_to_id("<tool_call>");
    QVERIFY(call >= 0 && !qwen->is_special(call));
    QCOMPARE(qwen->encode("x<tool_call>y")[1], call);
  }

  void stopIdsFromEveryPlace() {
    // generation_config.json's eos list (ids past the vocabulary dropped),
    // beside eos and the special turn ends.
    QTemporaryDir tmp;
    const std::string dir = tmp.path().toStdString();
    for (const char* name : {"tokenizer.json", "tokenizer_config.json"})
      write_text(dir + "/" + name, read_text(kDir + "llama3/" + name));
    write_text(dir + "/generation_config.json", R"({"eos_token_id": [1501, 1504, 128009]})");
    const auto tok = load_hf_tokenizer(dir);
    QCOMPARE(tok->stop_ids(), (Ids{1501, 1504}));  // <|end_of_text|>, <|eot_id|> (also eos)

    // GGUF: tokenizer.ggml.eot_token_id.
    GgufVocab v = gguf_from_dump(kDir + "llama2/gguf_vocab.json");
    v.eot = 7;
    QCOMPARE(make_gguf_tokenizer(v)->stop_ids(), (Ids{2, 7}));
  }

  void byteTokenizerUnchanged() {
    const ByteTokenizer tok;
    QCOMPARE(tok.encode("a<bos>"), (Ids{'a', '<', 'b', 'o', 's', '>'}));
    QCOMPARE(tok.encode("a<bos>", {.parse_special = true}), (Ids{'a', ByteTokenizer::kBos}));
    QCOMPARE(tok.encode("a", {.add_special = true}), (Ids{ByteTokenizer::kBos, 'a'}));
    QCOMPARE(tok.decode(Ids{ByteTokenizer::kBos, 'a', ByteTokenizer::kEos}), std::string("a"));
    QCOMPARE(tok.decode(Ids{ByteTokenizer::kBos, 'a'}, {.skip_special = false}), std::string("<bos>a"));
    QCOMPARE(tok.token_to_id("<sep>"), ByteTokenizer::kSep);
    QCOMPARE(tok.stop_ids(), Ids{ByteTokenizer::kEos});
  }

  void invalidUtf8SurvivesByteLevel() {
    // Hugging Face cannot take these bytes at all; byte-level BPE can, and gives them back.
    const auto tok = load_hf_tokenizer(kDir + "gpt2");
    const std::string bytes = std::string("ok \xff\xfe caf\xc3", 9) + "\xa9 \xe2\x82";
    QCOMPARE(tok->decode(tok->encode(bytes)), bytes);
  }

  void badFilesAreNamed() {
    QTemporaryDir tmp;
    const std::string dir = tmp.path().toStdString();
    const std::string file = dir + "/tokenizer.json";
    json gpt2 = json::parse(read_text(kDir + "gpt2/tokenizer.json"));

    json unigram = gpt2;
    unigram["model"] = {{"type", "Unigram"}, {"vocab", json::array()}};
    write_text(file, unigram.dump());
    EXPECT_FORMAT_ERROR(load_hf_tokenizer(dir), file + ": model.type: unsupported model \"Unigram\"");

    write_text(file, read_text(kDir + "gpt2/tokenizer.json").substr(0, 5000));
    EXPECT_FORMAT_ERROR(load_tokenizer_json(file), file + ": not valid JSON");

    json deep = gpt2;
    deep["added_tokens"] = "DEEP";
    std::string deep_text = deep.dump();
    deep_text.replace(deep_text.find("\"DEEP\""), 6, std::string(100000, '[') + std::string(100000, ']'));
    write_text(file, deep_text);
    EXPECT_FORMAT_ERROR(load_tokenizer_json(file), file + ": JSON nested deeper than 64 levels");

    json no_merges = gpt2;
    no_merges["model"].erase("merges");
    write_text(file, no_merges.dump());
    EXPECT_FORMAT_ERROR(load_tokenizer_json(file), "model: missing \"merges\"");

    json bad_merge = gpt2;
    bad_merge["model"]["merges"][7] = "Ġzzz qqq";
    write_text(file, bad_merge.dump());
    EXPECT_FORMAT_ERROR(load_tokenizer_json(file), "merge 7 (\"Ġzzz qqq\"): \"Ġzzz\" is not in the vocabulary");

    json bert = gpt2;
    bert["pre_tokenizer"] = {{"type", "BertPreTokenizer"}};
    write_text(file, bert.dump());
    EXPECT_FORMAT_ERROR(load_tokenizer_json(file),
                        "pre_tokenizer.type: unsupported pre-tokenizer \"BertPreTokenizer\"");

    json bad_regex = gpt2;
    bad_regex["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
    write_text(file, bad_regex.dump());
    EXPECT_FORMAT_ERROR(load_tokenizer_json(file), "regex \"(unclosed\"");

    const std::string model = dir + "/tokenizer.model";
    write_text(model, "not a protobuf");
    EXPECT_FORMAT_ERROR(SentencePieceTokenizer(model, {}), model + ": not a SentencePiece model");

    QTemporaryDir empty;
    EXPECT_FORMAT_ERROR(load_hf_tokenizer(empty.path().toStdString()), "no tokenizer.json or tokenizer.model");

    const auto hf = load_hf_tokenizer(kDir + "smollm");
    GgufVocab v = gguf_from_tokenizer_json("smollm", "falcon-h7", *hf);
    EXPECT_FORMAT_ERROR(make_gguf_tokenizer(v), "tokenizer.ggml.pre \"falcon-h7\" is not a pre-tokenizer");
    v.pre = "smollm";
    v.model = "t5";
    EXPECT_FORMAT_ERROR(make_gguf_tokenizer(v), "tokenizer.ggml.model \"t5\" is not supported");
    v.model = "gpt2";
    v.merges[3] = "nospace";
    EXPECT_FORMAT_ERROR(make_gguf_tokenizer(v), "tokenizer.ggml.merges[3] \"nospace\"");
    GgufVocab spm = gguf_from_dump(kDir + "llama2/gguf_vocab.json");
    spm.scores.pop_back();
    EXPECT_FORMAT_ERROR(make_gguf_tokenizer(spm), "tokenizer.ggml.scores has 1499 entries for 1500 tokens");
  }
};

QTEST_APPLESS_MAIN(TestTokenizers)
#include "test_tokenizers.moc"
