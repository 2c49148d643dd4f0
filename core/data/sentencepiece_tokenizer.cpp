#include "core/data/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>

#include "core/common/errors.h"

namespace lwb::data {

namespace {

using Processor = sentencepiece::SentencePieceProcessor;

std::unique_ptr<Processor> load_processor(const std::filesystem::path& file) {
  auto sp = std::make_unique<Processor>();
  const auto status = sp->Load(file.string());
  if (!status.ok()) throw FormatError(file.string(), "not a SentencePiece model: " + status.ToString());
  return sp;
}

const std::string kSpace = "\u2581";

VocabSpec make_spec(const Processor& sp, const std::filesystem::path& file, const SentencePieceOptions& o) {
  VocabSpec v;
  v.source = file.string();
  const int n = sp.GetPieceSize();
  for (int id = 0; id < n; ++id) {
    const std::string& piece = sp.IdToPiece(id);
    v.pieces.push_back(piece);
    if (sp.IsControl(id) || sp.IsUnknown(id)) {
      v.piece_bytes.push_back(piece);
      v.added.push_back({piece, id, true});
    } else {
      PieceDecoding decoding;
      decoding.space_marker = kSpace;
      decoding.byte_tokens = sp.IsByte(id);
      v.piece_bytes.push_back(decode_piece(piece, decoding));
    }
  }
  for (const AddedToken& t : o.added) {
    if (t.id < 0) continue;
    const auto id = static_cast<std::size_t>(t.id);
    if (id >= v.pieces.size()) {
      v.pieces.resize(id + 1);
      v.piece_bytes.resize(id + 1);
    }
    v.pieces[id] = v.piece_bytes[id] = t.content;
    std::erase_if(v.added, [&](const AddedToken& a) { return a.id == t.id; });
    v.added.push_back(t);
  }

  const auto id_of = [&](const std::optional<std::string>& token, int model_id, const char* what) {
    if (!token) return static_cast<std::int32_t>(model_id);
    for (std::size_t id = 0; id < v.pieces.size(); ++id)
      if (v.pieces[id] == *token) return static_cast<std::int32_t>(id);
    throw FormatError(v.source, std::string(what) + " token \"" + *token + "\" is not in the vocabulary");
  };
  v.bos = id_of(o.bos, sp.bos_id(), "bos");
  v.eos = id_of(o.eos, sp.eos_id(), "eos");
  v.pad = id_of(o.pad, sp.pad_id(), "pad");
  v.unk = id_of(o.unk, sp.unk_id(), "unk");
  if (o.add_bos && v.bos >= 0) v.prefix.push_back(v.bos);
  if (o.add_eos && v.eos >= 0) v.suffix.push_back(v.eos);
  v.stop = o.stop;
  // The library's API (without the protobuf headers) does not show the
  // normalizer's add_dummy_prefix; whether "a" comes back as "▁a" does.
  const std::vector<std::string> a = sp.EncodeAsPieces("a");
  v.strip_leading_space = !a.empty() && a[0].compare(0, kSpace.size(), kSpace) == 0;
  return v;
}

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(const std::filesystem::path& file, const SentencePieceOptions& options)
    : SentencePieceTokenizer(load_processor(file), file, options) {}

SentencePieceTokenizer::SentencePieceTokenizer(std::unique_ptr<Processor> sp, const std::filesystem::path& file,
                                               const SentencePieceOptions& options)
    : VocabTokenizer("sentencepiece", make_spec(*sp, file, options)), sp_(std::move(sp)) {}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

void SentencePieceTokenizer::encode_text(std::string_view text, bool, std::vector<std::int32_t>& out) const {
  // The library adds its dummy prefix to every stretch between added tokens,
  // as transformers' legacy Llama tokenizer does.
  std::vector<int> ids;
  const auto status = sp_->Encode(text, &ids);
  if (!status.ok()) throw Error(spec().source + ": SentencePiece encode failed: " + status.ToString());
  out.insert(out.end(), ids.begin(), ids.end());
}

}  // namespace lwb::data
