#pragma once
// safetensors files (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length N, N bytes of JSON describing each tensor, then
// the raw little-endian tensor data. Files are untrusted input: everything is
// validated when a file is opened, so later accessors cannot go out of bounds.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/format/mapped_file.h"

namespace lwb::io {

// Declared in the reference implementation's order, which the writer relies on
// (tensors are laid out by descending dtype).
enum class StDType { BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64 };

std::size_t st_dtype_size(StDType dtype);
const char* st_dtype_name(StDType dtype);  // "F32", "BF16", ...

struct StTensorInfo {
  std::string name;
  StDType dtype = StDType::F32;
  std::vector<std::int64_t> shape;
  // Byte range relative to the start of the data section.
  std::uint64_t begin = 0, end = 0;
  std::int64_t numel() const;
};

class SafetensorsFile {
 public:
  // Maps the file read-only and validates it fully; FormatError names the path.
  static SafetensorsFile open(const std::filesystem::path& file);
  // Validates bytes held in memory (e.g. a blob from the store); FormatError
  // names `label`.
  static SafetensorsFile from_bytes(std::vector<std::uint8_t> bytes, std::string label);

  SafetensorsFile(SafetensorsFile&&) noexcept = default;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept = default;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile() = default;

  const std::vector<StTensorInfo>& tensors() const { return tensors_; }  // sorted by data offset
  const StTensorInfo* find(std::string_view name) const;                 // nullptr if absent
  const StTensorInfo& at(std::string_view name) const;                   // FormatError if absent
  // The raw bytes of a tensor of this file.
  std::span<const std::byte> bytes(const StTensorInfo& info) const;

  // Converts F32, F16, BF16 and F64 tensors to float; other dtypes are a
  // FormatError.
  std::vector<float> read_f32(std::string_view name) const;
  // As read_f32, into a buffer that must hold exactly numel() floats.
  void read_f32_into(std::string_view name, std::span<float> out) const;

  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& source() const { return source_; }

 private:
  SafetensorsFile() = default;
  void parse(std::span<const std::byte> whole);

  std::string source_;
  format::InputBytes input_;
  std::span<const std::byte> data_;  // the data section, after the header
  std::vector<StTensorInfo> tensors_;
  std::map<std::string, std::size_t, std::less<>> index_;  // name -> position in tensors_
  std::map<std::string, std::string> metadata_;
};

struct StTensorWrite {
  std::string name;
  StDType dtype = StDType::F32;
  std::vector<std::int64_t> shape;
  std::span<const std::byte> data;  // numel × dtype size bytes, little-endian
};

// Lays tensors out as the reference writer does (see safetensors.cpp), so the
// same tensors always give the same bytes. Names must be unique and non-empty,
// and each tensor's data must match its shape and dtype (else FormatError).
std::vector<std::uint8_t> serialize_safetensors(std::vector<StTensorWrite> tensors,
                                                const std::map<std::string, std::string>& metadata);
// Writes "<file>.tmp-<pid>", fsyncs it and renames it over `file`, so a crash
// never leaves a partial file under the final name.
void write_safetensors(const std::filesystem::path& file, std::vector<StTensorWrite> tensors,
                       const std::map<std::string, std::string>& metadata);

// "[8, 128]", for messages about shapes.
std::string shape_str(std::span<const std::int64_t> shape);

}  // namespace lwb::io
