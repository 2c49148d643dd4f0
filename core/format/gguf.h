#pragma once
// GGUF files (ggml's docs/gguf.md), versions 2 and 3, which share one
// little-endian layout: "GGUF", u32 version, u64 tensor count, u64 metadata
// count; the metadata (key, u32 type, value); the tensor infos (name, u32
// n_dims, u64 dims innermost first, u32 ggml type, u64 offset); then, at the
// next multiple of general.alignment (default 32), the data section, each
// tensor padded to the alignment. Files are untrusted input: everything is
// validated when a file is opened, as strictly as ggml's own reader, so later
// accessors cannot go out of bounds.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/format/gguf_quants.h"
#include "core/format/mapped_file.h"

namespace lwb::format {

enum class GgufType : std::uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7,
  String = 8, Array = 9, U64 = 10, I64 = 11, F64 = 12,
};

const char* gguf_type_name(GgufType type);  // "u32", "string", "array", ...

// One metadata value. Integers are held widened (unsigned ones as u64, signed
// as i64); `type` records what the file stores, so a value written back
// gives the same bytes.
struct GgufValue {
  using Array = std::vector<GgufValue>;
  GgufType type = GgufType::U8;
  GgufType elem = GgufType::U8;  // arrays only: the type of every item
  std::variant<std::uint64_t, std::int64_t, float, double, bool, std::string, Array> data;

  static GgufValue u32(std::uint32_t v) { return {GgufType::U32, GgufType::U8, std::uint64_t{v}}; }
  static GgufValue f32(float v) { return {GgufType::F32, GgufType::U8, v}; }
  static GgufValue string(std::string v) { return {GgufType::String, GgufType::U8, std::move(v)}; }
  static GgufValue array(GgufType elem, Array items) { return {GgufType::Array, elem, std::move(items)}; }

  // "u32", "array of string", "array of array".
  std::string type_text() const;
  bool operator==(const GgufValue&) const = default;
};

using GgufMetadata = std::vector<std::pair<std::string, GgufValue>>;

struct GgufTensorInfo {
  std::string name;
  GgmlType type = GgmlType::F32;
  // ggml order: dims[0] is the row length. An HF [out, in] weight has dims
  // {in, out} and the same bytes.
  std::vector<std::uint64_t> dims;
  std::uint64_t offset = 0;  // from the start of the data section
  std::uint64_t nbytes = 0;

  std::uint64_t numel() const;
  // Outermost first (dims reversed), as torch and safetensors write shapes.
  std::vector<std::int64_t> shape() const;
};

class GgufFile {
 public:
  // Maps the file read-only and validates it fully; FormatError names the path.
  static GgufFile open(const std::filesystem::path& file);
  // Validates bytes held in memory; FormatError names `label`.
  static GgufFile from_bytes(std::vector<std::uint8_t> bytes, std::string label);

  GgufFile(GgufFile&&) noexcept = default;
  GgufFile& operator=(GgufFile&&) noexcept = default;
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;
  ~GgufFile() = default;

  const std::string& source() const { return source_; }
  std::uint32_t version() const { return version_; }
  std::uint32_t alignment() const { return alignment_; }
  std::uint64_t data_offset() const { return data_offset_; }  // in the file

  const GgufMetadata& metadata() const { return metadata_; }  // in file order
  const GgufValue* find(std::string_view key) const;         // nullptr if absent
  // The typed reads throw a FormatError naming the file and key when the key
  // is absent or holds another type ("key \"k\": expected u32, got string").
  const GgufValue& at(std::string_view key) const;
  std::uint32_t get_u32(std::string_view key) const;
  float get_f32(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  const std::string& get_string(std::string_view key) const;
  const GgufValue::Array& get_array(std::string_view key, GgufType elem) const;
  std::vector<std::string> get_strings(std::string_view key) const;
  std::vector<float> get_f32s(std::string_view key) const;
  std::vector<std::int32_t> get_i32s(std::string_view key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }  // in file order
  const GgufTensorInfo* find_tensor(std::string_view name) const;         // nullptr if absent
  const GgufTensorInfo& tensor(std::string_view name) const;              // FormatError if absent
  // The raw (possibly quantised) bytes of a tensor of this file.
  std::span<const std::byte> bytes(const GgufTensorInfo& info) const;
  // Dequantised to float (gguf_quants.h); a FormatError names the tensor and
  // its type when that type cannot be.
  std::vector<float> read_f32(std::string_view name) const;
  // As read_f32, into a buffer that must hold exactly numel() floats.
  void read_f32_into(std::string_view name, std::span<float> out) const;

 private:
  GgufFile() = default;
  void parse();

  std::string source_;
  InputBytes input_;
  std::uint32_t version_ = 0;
  std::uint32_t alignment_ = 32;
  std::uint64_t data_offset_ = 0;
  GgufMetadata metadata_;
  std::map<std::string, std::size_t, std::less<>> key_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, std::size_t, std::less<>> tensor_index_;
};

struct GgufTensorWrite {
  std::string name;
  GgmlType type = GgmlType::F32;
  std::vector<std::uint64_t> dims;  // ggml order, dims[0] the row length
  std::span<const std::byte> data;  // the tensor's bytes in `type`
};

// A version 3 file laid out as ggml and the gguf Python package write it:
// metadata and tensors in the given order, the data section and every tensor
// padded with zeros to general.alignment (a u32 power of two when present,
// else 32). Keys and names must be non-empty and unique, values consistent
// with their types, tensors of at most 4 dims whose rows are whole blocks
// and whose data matches their shape; else FormatError naming `label` (the
// file for write_gguf) and the key or tensor.
std::vector<std::uint8_t> serialize_gguf(const GgufMetadata& metadata, const std::vector<GgufTensorWrite>& tensors,
                                         const std::string& label = "GGUF writer");
// Writes "<file>.tmp-<pid>", fsyncs it and renames it over `file`, so a crash
// never leaves a partial file under the final name; tensor data is written
// from where it lies, never copied into one buffer.
void write_gguf(const std::filesystem::path& file, const GgufMetadata& metadata,
                const std::vector<GgufTensorWrite>& tensors);

}  // namespace lwb::format
