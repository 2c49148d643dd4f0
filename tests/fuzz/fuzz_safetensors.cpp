// libFuzzer target for the safetensors reader: arbitrary bytes must either be
// rejected with an lwb::Error or open as a file whose every tensor can be read
// and written back unchanged. Anything else (a crash, a sanitizer report, any
// other exception) is a bug.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "core/common/errors.h"
#include "core/format/safetensors.h"

namespace {

bool is_float(lwb::io::StDType d) {
  using lwb::io::StDType;
  return d == StDType::F32 || d == StDType::F16 || d == StDType::BF16 || d == StDType::F64;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lwb::io;
  std::optional<SafetensorsFile> st;
  try {
    st.emplace(SafetensorsFile::from_bytes(std::vector<std::uint8_t>(data, data + size), "fuzz input"));
    for (const StTensorInfo& t : st->tensors())
      if (is_float(t.dtype)) st->read_f32(t.name);
  } catch (const lwb::Error&) {
    return 0;
  }

  // Whatever the reader accepted, the writer must reproduce, and the reader
  // must accept again with the same tensors (outside the try: a throw here is
  // a finding).
  std::vector<StTensorWrite> writes;
  for (const StTensorInfo& t : st->tensors()) writes.push_back({t.name, t.dtype, t.shape, st->bytes(t)});
  const SafetensorsFile again =
      SafetensorsFile::from_bytes(serialize_safetensors(std::move(writes), st->metadata()), "round trip");
  if (again.metadata() != st->metadata() || again.tensors().size() != st->tensors().size()) __builtin_trap();
  for (const StTensorInfo& t : st->tensors()) {
    const StTensorInfo& u = again.at(t.name);
    const auto a = st->bytes(t);
    const auto b = again.bytes(u);
    if (u.dtype != t.dtype || u.shape != t.shape || a.size() != b.size() ||
        !std::equal(a.begin(), a.end(), b.begin()))
      __builtin_trap();
  }
  return 0;
}
