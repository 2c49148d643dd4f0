// libFuzzer target for the GGUF reader: arbitrary bytes must either be
// rejected with an lwb::Error or open as a file whose every dequantisable
// tensor converts, and which the writer writes again into a file the reader
// accepts with the same metadata and tensors. Anything else (a crash, a
// sanitizer report, any other exception) is a bug.
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <variant>
#include <vector>

#include "core/common/errors.h"
#include "core/format/gguf.h"

namespace {

using lwb::format::GgufValue;

// Equality with floats compared by their bits, since a NaN never equals itself.
bool same(const GgufValue& a, const GgufValue& b) {
  if (a.type != b.type || a.elem != b.elem || a.data.index() != b.data.index()) return false;
  if (const auto* x = std::get_if<float>(&a.data))
    return std::bit_cast<std::uint32_t>(*x) == std::bit_cast<std::uint32_t>(std::get<float>(b.data));
  if (const auto* x = std::get_if<double>(&a.data))
    return std::bit_cast<std::uint64_t>(*x) == std::bit_cast<std::uint64_t>(std::get<double>(b.data));
  if (const auto* x = std::get_if<GgufValue::Array>(&a.data)) {
    const auto& y = std::get<GgufValue::Array>(b.data);
    return x->size() == y.size() && std::equal(x->begin(), x->end(), y.begin(), same);
  }
  return a.data == b.data;
}

std::vector<lwb::format::GgufTensorWrite> writes_of(const lwb::format::GgufFile& f) {
  std::vector<lwb::format::GgufTensorWrite> w;
  for (const auto& t : f.tensors()) w.push_back({t.name, t.type, t.dims, f.bytes(t)});
  return w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lwb::format;
  std::optional<GgufFile> f;
  try {
    f.emplace(GgufFile::from_bytes(std::vector<std::uint8_t>(data, data + size), "fuzz input"));
    // Valid tensors lie inside the input, so this stays within a few times its size.
    for (const GgufTensorInfo& t : f->tensors())
      if (can_dequantize(t.type)) f->read_f32(t.name);
  } catch (const lwb::Error&) {
    return 0;
  }
  // The writer pads the header to the alignment: up to 2 GiB for a valid
  // tiny file with general.alignment = 2^31, which is not worth the memory.
  if (f->alignment() > (1u << 20)) return 0;

  // Outside the try: a throw from here on is a finding.
  const GgufFile again = GgufFile::from_bytes(serialize_gguf(f->metadata(), writes_of(*f)), "round trip");
  if (again.metadata().size() != f->metadata().size() || again.tensors().size() != f->tensors().size() ||
      again.alignment() != f->alignment())
    __builtin_trap();
  for (std::size_t i = 0; i < f->metadata().size(); ++i)
    if (again.metadata()[i].first != f->metadata()[i].first || !same(again.metadata()[i].second, f->metadata()[i].second))
      __builtin_trap();
  for (std::size_t i = 0; i < f->tensors().size(); ++i) {
    const GgufTensorInfo &t = f->tensors()[i], &u = again.tensors()[i];
    const auto a = f->bytes(t), b = again.bytes(u);
    if (u.name != t.name || u.type != t.type || u.dims != t.dims || a.size() != b.size() ||
        !std::equal(a.begin(), a.end(), b.begin()))
      __builtin_trap();
  }
  return 0;
}
