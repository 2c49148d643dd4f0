#include "core/source/model_source.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "core/common/errors.h"
#include "core/common/paths.h"
#include "core/data/gguf_tokenizer.h"
#include "core/data/hf_tokenizer.h"
#include "core/io/gguf_model.h"
#include "core/io/hf_checkpoint.h"
#include "core/model/checkpoint.h"
#include "core/source/base_cache.h"
#include "core/source/downloads.h"

namespace lwb {

namespace fs = std::filesystem;

namespace {

constexpr char kBuiltinPrefix[] = "lora-workbench/";

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

std::string lower_extension(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

bool is_builtin_preset(const std::string& name) {
  const auto names = model_preset_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string absolute_text(const fs::path& p) { return fs::absolute(p).lexically_normal().string(); }

std::shared_ptr<const format::GgufFile> open_gguf(const fs::path& p) {
  return std::make_shared<const format::GgufFile>(format::GgufFile::open(p));
}

ResolvedSource from_path(const std::string& spec, const std::string& field) {
  const fs::path path(spec);
  std::error_code ec;
  if (spec.empty() || !fs::exists(path, ec))
    throw ConfigError(field, quoted(spec) + " does not exist; expected a model preset (" + known_model_presets() +
                                 "), a Hugging Face folder, a .gguf file or a base checkpoint (.safetensors)");
  ResolvedSource s;
  s.path = path;
  s.base_model_name = absolute_text(path);
  if (fs::is_directory(path, ec)) {
    s.kind = SourceKind::HfFolder;
    s.config = io::read_hf_config(path);
  } else if (lower_extension(path) == ".gguf") {
    s.kind = SourceKind::Gguf;
    s.gguf = open_gguf(path);
    s.config = io::read_gguf_config(*s.gguf);
  } else {
    s.kind = SourceKind::Checkpoint;
    s.config = checkpoint_model_config(path);
  }
  return s;
}

// nullopt when `name` is no preset at all.
std::optional<ResolvedSource> from_preset(const std::string& name, const fs::path& data_dir, const std::string& field) {
  ResolvedSource s;
  s.preset = name;
  if (is_builtin_preset(name)) {
    s.kind = SourceKind::Builtin;
    s.config = model_preset(name);
    s.path = cached_base_path(data_dir, name);
    s.base_model_name = kBuiltinPrefix + name;
    return s;
  }
  const DownloadableModel* m = find_downloadable(name);
  if (!m || m->preset != name) return std::nullopt;
  s.kind = SourceKind::Downloaded;
  s.path = downloaded_model_path(data_dir, *m);
  if (!fs::exists(s.path))
    throw ConfigError(field, name + " is not downloaded yet (no " + s.path.string() +
                                 "): fetch it with `lora-workbench fetch " + m->fetch_name + "` (./run.sh fetch " +
                                 m->fetch_name + ") or the Fetch button beside the window's model picker");
  s.gguf = open_gguf(s.path);
  s.config = io::read_gguf_config(*s.gguf);
  s.config.name = name;
  s.base_model_name = absolute_text(s.path);
  return s;
}

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw FormatError(file.string(), "cannot be read");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::unique_ptr<data::Tokenizer> gguf_tokenizer(const format::GgufFile& f) {
  const std::optional<data::GgufVocab> vocab = io::read_gguf_vocab(f);
  if (!vocab)
    throw FormatError(f.source(), "carries no tokenizer (no tokenizer.ggml.model key); choose one with "
                                  "model.tokenizer (byte, a Hugging Face folder, a tokenizer.json or another .gguf)");
  return data::make_gguf_tokenizer(*vocab);
}

std::unique_ptr<data::Tokenizer> own_tokenizer(const ResolvedSource& s) {
  switch (s.kind) {
    case SourceKind::HfFolder:
      if (s.config.tokenizer == "hf") return data::load_hf_tokenizer(s.path);
      break;
    case SourceKind::Gguf:
    case SourceKind::Downloaded:
      if (s.config.tokenizer == "gguf") return gguf_tokenizer(*s.gguf);
      break;
    case SourceKind::Builtin:
    case SourceKind::Checkpoint:
      break;
  }
  return data::make_tokenizer(s.config.tokenizer);
}

std::unique_ptr<data::Tokenizer> tokenizer_at(const fs::path& p) {
  std::error_code ec;
  if (!fs::exists(p, ec))
    throw ConfigError("model.tokenizer", quoted(p.string()) +
                                             " does not exist; expected auto, byte, or the path of a Hugging Face "
                                             "folder, a tokenizer.json or a .gguf file");
  if (fs::is_directory(p, ec)) return data::load_hf_tokenizer(p);
  if (lower_extension(p) == ".gguf") return gguf_tokenizer(format::GgufFile::open(p));
  if (lower_extension(p) == ".json") return data::load_tokenizer_json(p);
  throw ConfigError("model.tokenizer", quoted(p.string()) +
                                           " is not a Hugging Face folder, a tokenizer.json or a .gguf file");
}

data::ChatTokens chat_tokens(const data::Tokenizer& t) {
  auto piece = [&](std::int32_t id) { return id >= 0 ? t.id_to_piece(id) : std::string(); };
  return {piece(t.bos()), piece(t.eos()), piece(t.unk()), piece(t.pad())};
}

}  // namespace

std::string ResolvedSource::describe() const {
  switch (kind) {
    case SourceKind::Builtin: return "built-in preset " + preset;
    case SourceKind::Downloaded: return "downloaded model " + preset + " (" + path.string() + ")";
    case SourceKind::HfFolder: return "Hugging Face folder " + path.string();
    case SourceKind::Gguf: return "GGUF file " + path.string();
    case SourceKind::Checkpoint: return "base checkpoint " + path.string();
  }
  return path.string();
}

ResolvedSource resolve_model(const ModelSource& m, const fs::path& data_dir) {
  if (m.base != "pretrained" && m.base != "random") return from_path(m.base, "model.base");
  std::optional<ResolvedSource> s = from_preset(m.preset, data_dir, "model.preset");
  if (!s) throw ConfigError("model.preset", "unknown model preset " + quoted(m.preset) + "; known: " + known_model_presets());
  s->random = m.base == "random";
  return *s;
}

ResolvedSource resolve_base(const std::string& spec, const fs::path& data_dir, const std::string& field) {
  const std::string name = spec.starts_with(kBuiltinPrefix) ? spec.substr(sizeof kBuiltinPrefix - 1) : spec;
  if (std::optional<ResolvedSource> s = from_preset(name, data_dir, field)) return *s;
  if (name != spec)
    throw ConfigError(field, quoted(spec) + " names no built-in preset; known: " + known_model_presets());
  return from_path(spec, field);
}

std::string base_spec_of(const AdapterState& adapter) { return adapter.base_model; }

std::string peft_base_model_name(const std::string& spec) {
  std::error_code ec;
  if (lower_extension(spec) != ".gguf" || !fs::is_regular_file(spec, ec)) return spec;
  try {
    return io::gguf_hub_repository(format::GgufFile::open(spec)).value_or(spec);
  } catch (const FormatError&) {
    return spec;  // the adapter's own files do not need the base; its path is the best name left
  }
}

void load_weights(Model& model, const ResolvedSource& s) {
  switch (s.kind) {
    case SourceKind::Builtin:
    case SourceKind::Checkpoint: load_base_checkpoint(model, s.path); return;
    case SourceKind::HfFolder: io::import_hf_weights(model, s.path); return;
    case SourceKind::Downloaded:
    case SourceKind::Gguf: io::import_gguf_weights(model, *s.gguf); return;
  }
}

std::unique_ptr<data::Tokenizer> load_tokenizer(const ResolvedSource& s, const std::string& setting) {
  std::unique_ptr<data::Tokenizer> t = setting == "auto"   ? own_tokenizer(s)
                                       : setting == "byte" ? data::make_tokenizer("byte")
                                                           : tokenizer_at(setting);
  if (t->vocab_size() > s.config.vocab)
    throw ConfigError("model.tokenizer", "the " + t->name() + " tokenizer has " + std::to_string(t->vocab_size()) +
                                             " ids but the model (" + s.describe() + ") has a vocabulary of " +
                                             std::to_string(s.config.vocab));
  return t;
}

std::optional<data::ChatTemplate> load_chat_template(const ResolvedSource& s, const std::string& setting,
                                                     const data::Tokenizer& tokenizer) {
  if (setting == "none") return std::nullopt;
  if (setting == "auto") {
    if (s.kind == SourceKind::HfFolder && data::has_hf_chat_template(s.path))
      return data::load_hf_chat_template(s.path);
    if (s.gguf)
      if (const std::optional<std::string> text = io::gguf_chat_template(*s.gguf))
        return data::ChatTemplate(*text, s.path.string() + ": tokenizer.chat_template", chat_tokens(tokenizer));
    return std::nullopt;
  }
  if (lower_extension(setting) == ".jinja") {
    if (!fs::exists(setting)) throw ConfigError("model.chat_template", quoted(setting) + " does not exist");
    return data::ChatTemplate(read_text(setting), setting, chat_tokens(tokenizer));
  }
  if (setting.find('/') != std::string::npos)
    throw ConfigError("model.chat_template", quoted(setting) + " is not a .jinja file");
  return data::ChatTemplate::builtin(setting, "model.chat_template");
}

std::vector<fs::path> tokenizer_files(const ResolvedSource& s) {
  std::vector<fs::path> files;
  if (s.kind != SourceKind::HfFolder) return files;
  for (const char* name : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
                           "added_tokens.json", "chat_template.jinja"})
    if (fs::exists(s.path / name)) files.push_back(s.path / name);
  return files;
}

fs::path SourceEnvironment::data_folder() const { return data_dir.empty() ? user_data_dir() : data_dir; }

fs::path SourceEnvironment::builtin_base(const std::string& preset) const {
  const fs::path path = cached_base_path(data_folder(), preset);
  if (!fs::exists(path))
    throw ConfigError("base", "the " + preset + " base is not built yet (no " + path.string() +
                                  "); make it with: lora-workbench pretrain --preset " + preset);
  return path;
}

void load_base(const std::string& spec, const SourceEnvironment& env, LoadedBase& out) {
  load_base(resolve_base(spec, env.data_folder()), env, out);
}

void load_base(const ResolvedSource& source, const SourceEnvironment& env, LoadedBase& out) {
  out.source = source;
  if (source.kind == SourceKind::Builtin) out.source.path = env.builtin_base(source.preset);
  out.model = std::make_unique<Model>(source.config, Model::Mode::Frozen);
  out.model->materialize(out.backend, out.ledger, 1, 1);
  load_weights(*out.model, out.source);
  out.fingerprint = base_fingerprint(*out.model);
}

}  // namespace lwb
