#include "core/format/safetensors.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <stdexcept>

#include "core/common/errors.h"
#include "core/common/half.h"
#include "core/format/atomic_file.h"

namespace lwb::io {

// The format is little-endian; reading and writing are plain byte copies.
static_assert(std::endian::native == std::endian::little,
              "safetensors I/O assumes a little-endian host");

namespace {

using json = nlohmann::json;

// The reference reader refuses larger headers; so do we, before parsing.
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;

struct DTypeDesc {
  StDType dtype;
  const char* name;
  std::size_t size;
};

constexpr std::array<DTypeDesc, 13> kDTypes{{
    {StDType::BOOL, "BOOL", 1},
    {StDType::U8, "U8", 1},
    {StDType::I8, "I8", 1},
    {StDType::I16, "I16", 2},
    {StDType::U16, "U16", 2},
    {StDType::F16, "F16", 2},
    {StDType::BF16, "BF16", 2},
    {StDType::I32, "I32", 4},
    {StDType::U32, "U32", 4},
    {StDType::F32, "F32", 4},
    {StDType::F64, "F64", 8},
    {StDType::I64, "I64", 8},
    {StDType::U64, "U64", 8},
}};

const DTypeDesc& describe(StDType dtype) {
  for (const DTypeDesc& d : kDTypes)
    if (d.dtype == dtype) return d;
  throw std::invalid_argument("invalid StDType value");
}

std::optional<StDType> dtype_from_name(std::string_view name) {
  for (const DTypeDesc& d : kDTypes)
    if (name == d.name) return d.dtype;
  return std::nullopt;
}

std::string dtype_list() {
  std::string s;
  for (const DTypeDesc& d : kDTypes) {
    if (!s.empty()) s += ", ";
    s += d.name;
  }
  return s;
}

std::string quote_name(std::string_view s) {
  // Untrusted names can be long; keep messages readable.
  constexpr std::size_t kMax = 80;
  if (s.size() <= kMax) return "\"" + std::string(s) + "\"";
  return "\"" + std::string(s.substr(0, kMax)) + "...\"";
}

// Element count and byte size of a shape, or nullopt when either overflows 64 bits.
std::optional<std::uint64_t> checked_numel(const std::vector<std::int64_t>& shape) {
  std::uint64_t n = 1;
  for (std::int64_t d : shape)
    if (__builtin_mul_overflow(n, static_cast<std::uint64_t>(d), &n)) return std::nullopt;
  return n;
}

std::optional<std::uint64_t> checked_nbytes(const std::vector<std::int64_t>& shape, StDType dtype) {
  const std::optional<std::uint64_t> n = checked_numel(shape);
  std::uint64_t bytes = 0;
  if (!n || __builtin_mul_overflow(*n, static_cast<std::uint64_t>(st_dtype_size(dtype)), &bytes))
    return std::nullopt;
  return bytes;
}

// Streams the header through nlohmann's SAX interface instead of building a
// DOM: a DOM silently keeps only the last of duplicate keys, and the SAX
// handler can refuse anything off-format at the first token, so memory stays
// proportional to what a well-formed header of that length declares.
class HeaderParser final : public nlohmann::json_sax<json> {
 public:
  std::vector<StTensorInfo> tensors;
  std::map<std::string, std::string> metadata;
  std::string error;  // the first problem; parsing stops there

  bool null() override { return unexpected("null"); }
  bool boolean(bool) override { return unexpected("a boolean"); }
  bool binary(binary_t&) override { return unexpected("binary data"); }

  bool number_unsigned(number_unsigned_t v) override {
    if (where_ == Where::Shape) {
      if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        return fail(tensor_ctx() + "shape dimension " + std::to_string(v) + " is too large");
      entry_.shape.push_back(static_cast<std::int64_t>(v));
      return true;
    }
    if (where_ == Where::Offsets) {
      if (offsets_.size() == 2) return fail(tensor_ctx() + "data_offsets has more than two numbers");
      offsets_.push_back(v);
      return true;
    }
    return unexpected("a number");
  }
  bool number_integer(number_integer_t v) override {
    if (where_ == Where::Shape || where_ == Where::Offsets)
      return fail(tensor_ctx() + field_ + " holds the negative number " + std::to_string(v) +
                  "; expected non-negative integers");
    return unexpected("a number");
  }
  bool number_float(number_float_t, const string_t& text) override {
    if (where_ == Where::Shape || where_ == Where::Offsets)
      return fail(tensor_ctx() + field_ + " holds " + quote_name(text) +
                  ", which is not a non-negative 64-bit integer");
    return unexpected("a number");
  }

  bool string(string_t& s) override {
    if (where_ == Where::MetadataValue) {
      metadata.emplace(field_, s);
      where_ = Where::Metadata;
      return true;
    }
    if (where_ == Where::EntryValue && field_ == "dtype") {
      const std::optional<StDType> dtype = dtype_from_name(s);
      if (!dtype)
        return fail(tensor_ctx() + "unknown dtype " + quote_name(s) + " (supported: " + dtype_list() + ")");
      entry_.dtype = *dtype;
      where_ = Where::Entry;
      return true;
    }
    return unexpected("a string");
  }

  bool start_object(std::size_t) override {
    if (where_ == Where::Top) {
      where_ = Where::Root;
      return true;
    }
    if (where_ == Where::RootValue && key_ == "__metadata__") {
      where_ = Where::Metadata;
      return true;
    }
    if (where_ == Where::RootValue) {
      entry_ = StTensorInfo{};
      entry_.name = key_;
      offsets_.clear();
      seen_.clear();
      where_ = Where::Entry;
      return true;
    }
    return unexpected("an object");
  }

  bool key(string_t& k) override {
    switch (where_) {
      case Where::Root:
        // The writer refuses empty names too, so whatever opens can be saved again.
        if (k.empty()) return fail("a tensor has an empty name; expected a non-empty name");
        if (!root_keys_.insert(k).second) return fail("duplicate key " + quote_name(k) + " in the header");
        key_ = k;
        where_ = Where::RootValue;
        return true;
      case Where::Metadata:
        if (metadata.contains(k)) return fail("duplicate key " + quote_name(k) + " in __metadata__");
        field_ = k;
        where_ = Where::MetadataValue;
        return true;
      case Where::Entry:
        if (k != "dtype" && k != "shape" && k != "data_offsets")
          return fail(tensor_ctx() + "unexpected field " + quote_name(k) +
                      " (expected dtype, shape and data_offsets)");
        if (!seen_.insert(k).second) return fail(tensor_ctx() + "duplicate key " + quote_name(k));
        field_ = k;
        where_ = Where::EntryValue;
        return true;
      default:
        return fail("unexpected key " + quote_name(k));
    }
  }

  bool end_object() override {
    switch (where_) {
      case Where::Metadata:
        where_ = Where::Root;
        return true;
      case Where::Entry:
        for (const char* f : {"dtype", "shape", "data_offsets"})
          if (!seen_.contains(f)) return fail(tensor_ctx() + "missing field " + f);
        entry_.begin = offsets_[0];
        entry_.end = offsets_[1];
        tensors.push_back(std::move(entry_));
        where_ = Where::Root;
        return true;
      default:  // the root object; a strict parse rejects anything after it
        where_ = Where::Done;
        return true;
    }
  }

  bool start_array(std::size_t) override {
    if (where_ == Where::EntryValue && field_ == "shape") {
      where_ = Where::Shape;
      return true;
    }
    if (where_ == Where::EntryValue && field_ == "data_offsets") {
      where_ = Where::Offsets;
      return true;
    }
    return unexpected("an array");
  }

  bool end_array() override {
    if (where_ == Where::Offsets && offsets_.size() != 2)
      return fail(tensor_ctx() + "data_offsets must hold two numbers [begin, end]");
    where_ = Where::Entry;
    return true;
  }

  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) override {
    // nlohmann's message quotes the offending token, which can be huge.
    std::string what = e.what();
    if (what.size() > 240) what = what.substr(0, 240) + "...";
    return fail("header is not valid JSON (at byte " + std::to_string(position) + " of the header): " + what);
  }

 private:
  // Where the next token is, in the only shape a header may have:
  // {"__metadata__": {k: "v", ...}, name: {"dtype": s, "shape": [n...], "data_offsets": [b, e]}, ...}
  enum class Where { Top, Root, RootValue, Metadata, MetadataValue, Entry, EntryValue, Shape, Offsets, Done };

  bool fail(std::string message) {
    error = std::move(message);
    return false;
  }
  std::string tensor_ctx() const { return "tensor " + quote_name(key_) + ": "; }

  bool unexpected(const std::string& what) {
    switch (where_) {
      case Where::RootValue:
        if (key_ == "__metadata__") return fail("__metadata__ is " + what + "; expected an object of strings");
        return fail("entry " + quote_name(key_) + " is " + what + "; expected an object {dtype, shape, data_offsets}");
      case Where::MetadataValue:
        return fail("__metadata__ value " + quote_name(field_) + " is " + what + "; expected a string");
      case Where::EntryValue:
        return fail(tensor_ctx() + field_ + " is " + what + "; expected " +
                    (field_ == "dtype" ? "a string" : field_ == "shape" ? "an array of integers" : "an array [begin, end]"));
      case Where::Shape:
      case Where::Offsets:
        return fail(tensor_ctx() + field_ + " holds " + what + "; expected non-negative integers");
      default:
        return fail("unexpected " + what + " in the header");
    }
  }

  Where where_ = Where::Top;
  std::string key_;    // current top-level key: a tensor name or __metadata__
  std::string field_;  // current key inside an entry or __metadata__
  StTensorInfo entry_;
  std::vector<std::uint64_t> offsets_;
  std::set<std::string> seen_;       // fields of entry_ seen so far
  std::set<std::string> root_keys_;  // names plus __metadata__
};

std::string json_string(const std::string& s, const std::string& source, const char* what) {
  try {
    return json(s).dump();
  } catch (const json::exception&) {
    throw FormatError(source, std::string(what) + " " + quote_name(s) + " is not valid UTF-8");
  }
}

// The reference writer (huggingface/safetensors, safetensors/src/tensor.rs,
// `prepare`: `right.dtype().cmp(&left.dtype()).then(lname.cmp(rname))`) sorts
// by dtype descending, then by name (byte order). Its Dtype enum derives Ord in
// declaration order, "increasing alignment":
//   BOOL < U8 < I8 < I16 < U16 < F16 < BF16 < I32 < U32 < F32 < F64 < I64 < U64
// with the F4/F6/F8/C64 types it adds placed in between; StDType keeps that
// order. 8-byte types come first, so every tensor stays aligned to its element
// size once the header is padded to a multiple of 8. Its metadata is a
// HashMap (random key order); ours is a std::map, so keys come out sorted and
// the same tensors always give the same bytes.
struct Prepared {
  std::string header;  // padded JSON
  std::vector<StTensorWrite> tensors;
  std::uint64_t data_bytes = 0;
};

Prepared prepare(std::vector<StTensorWrite> tensors, const std::map<std::string, std::string>& metadata,
                 const std::string& source) {
  std::sort(tensors.begin(), tensors.end(), [](const StTensorWrite& a, const StTensorWrite& b) {
    if (a.dtype != b.dtype) return a.dtype > b.dtype;
    return a.name < b.name;
  });

  Prepared p;
  std::set<std::string_view> names;
  p.header = "{";
  if (!metadata.empty()) {
    p.header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      p.header += (first ? "" : ",") + json_string(k, source, "metadata key") + ":" +
                  json_string(v, source, "metadata value");
      first = false;
    }
    p.header += "}";
  }
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const StTensorWrite& t = tensors[i];
    if (t.name.empty()) throw FormatError(source, "a tensor has an empty name");
    if (t.name == "__metadata__") throw FormatError(source, "\"__metadata__\" cannot name a tensor");
    if (!names.insert(t.name).second)
      throw FormatError(source, "duplicate tensor name " + quote_name(t.name));
    for (std::int64_t d : t.shape)
      if (d < 0) throw FormatError(source, "tensor " + quote_name(t.name) + " has a negative dimension");
    const std::optional<std::uint64_t> nbytes = checked_nbytes(t.shape, t.dtype);
    if (!nbytes || *nbytes != t.data.size())
      throw FormatError(source, "tensor " + quote_name(t.name) + ": shape " + shape_str(t.shape) + " of " +
                                    st_dtype_name(t.dtype) + " does not match its " +
                                    std::to_string(t.data.size()) + " data bytes");
    const std::uint64_t begin = p.data_bytes;
    p.data_bytes += *nbytes;
    // Compact JSON, as the reference writer emits it.
    std::string shape = "[";
    for (std::size_t i = 0; i < t.shape.size(); ++i) {
      if (i) shape += ',';
      shape += std::to_string(t.shape[i]);
    }
    shape += "]";
    p.header += (p.header.size() > 1 ? "," : "") + json_string(t.name, source, "tensor name") +
                ":{\"dtype\":\"" + st_dtype_name(t.dtype) + "\",\"shape\":" + shape +
                ",\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(p.data_bytes) + "]}";
  }
  p.header += "}";
  p.header.append((8 - p.header.size() % 8) % 8, ' ');
  p.tensors = std::move(tensors);
  return p;
}

std::array<std::uint8_t, 8> le64(std::uint64_t v) {
  std::array<std::uint8_t, 8> b{};
  for (std::size_t i = 0; i < 8; ++i) b[i] = static_cast<std::uint8_t>(v >> (8 * i));
  return b;
}

template <typename T>
T load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof v);  // data offsets need not be aligned in untrusted files
  return v;
}

}  // namespace

std::size_t st_dtype_size(StDType dtype) { return describe(dtype).size; }
const char* st_dtype_name(StDType dtype) { return describe(dtype).name; }

std::int64_t StTensorInfo::numel() const {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& file) {
  SafetensorsFile st;
  st.source_ = file.string();
  st.input_ = format::InputBytes::map(file);
  st.parse(st.input_.bytes());
  return st;
}

SafetensorsFile SafetensorsFile::from_bytes(std::vector<std::uint8_t> bytes, std::string label) {
  SafetensorsFile st;
  st.source_ = std::move(label);
  st.input_ = format::InputBytes::hold(std::move(bytes));
  st.parse(st.input_.bytes());
  return st;
}

void SafetensorsFile::parse(std::span<const std::byte> whole) {
  const std::uint64_t size = whole.size();
  if (size < 8)
    throw FormatError(source_, "truncated: " + std::to_string(size) +
                                   " bytes, too short for the 8-byte header length");
  std::uint64_t n = 0;
  for (std::size_t i = 8; i-- > 0;) n = (n << 8) | std::to_integer<std::uint64_t>(whole[i]);
  if (n > kMaxHeaderBytes)
    throw FormatError(source_, "header length " + std::to_string(n) + " exceeds the limit of " +
                                   std::to_string(kMaxHeaderBytes) + " bytes");
  if (8 + n > size)
    throw FormatError(source_, "truncated: header length " + std::to_string(n) + " needs " +
                                   std::to_string(8 + n) + " bytes but the file has " + std::to_string(size));
  const auto* header = reinterpret_cast<const char*>(whole.data() + 8);
  if (n == 0 || header[0] != '{')
    throw FormatError(source_, "header is not a JSON object (it must start with '{')");

  HeaderParser parser;
  if (!json::sax_parse(header, header + n, &parser, json::input_format_t::json, /*strict=*/true))
    throw FormatError(source_, parser.error);

  for (const StTensorInfo& t : parser.tensors) {
    const std::string ctx = "tensor " + quote_name(t.name) + ": ";
    if (t.end < t.begin)
      throw FormatError(source_, ctx + "data_offsets end " + std::to_string(t.end) + " is before begin " +
                                     std::to_string(t.begin));
    const std::optional<std::uint64_t> nbytes = checked_nbytes(t.shape, t.dtype);
    if (!nbytes)
      throw FormatError(source_, ctx + "shape " + shape_str(t.shape) + " of " + st_dtype_name(t.dtype) +
                                     " overflows 64 bits");
    if (*nbytes != t.end - t.begin)
      throw FormatError(source_, ctx + "size mismatch: shape " + shape_str(t.shape) + " of " +
                                     st_dtype_name(t.dtype) + " needs " + std::to_string(*nbytes) +
                                     " bytes but data_offsets span " + std::to_string(t.end - t.begin));
  }

  // The data must be tiled exactly: each tensor starts where the previous one
  // ends. Empty tensors sort before a tensor starting at the same offset.
  std::vector<StTensorInfo> tensors = std::move(parser.tensors);
  std::sort(tensors.begin(), tensors.end(), [](const StTensorInfo& a, const StTensorInfo& b) {
    if (a.begin != b.begin) return a.begin < b.begin;
    if (a.end != b.end) return a.end < b.end;
    return a.name < b.name;
  });
  std::uint64_t cursor = 0;
  for (const StTensorInfo& t : tensors) {
    if (t.begin < cursor)
      throw FormatError(source_, "tensor " + quote_name(t.name) + " overlaps the previous tensor: it starts at " +
                                     std::to_string(t.begin) + ", before " + std::to_string(cursor));
    if (t.begin > cursor)
      throw FormatError(source_, "gap in the data: tensor " + quote_name(t.name) + " starts at " +
                                     std::to_string(t.begin) + " but the previous data ends at " +
                                     std::to_string(cursor));
    cursor = t.end;
  }
  const std::uint64_t available = size - 8 - n;
  if (cursor > available)
    throw FormatError(source_, "truncated: the tensors need " + std::to_string(cursor) +
                                   " data bytes but only " + std::to_string(available) + " follow the header");
  if (cursor < available)
    throw FormatError(source_, std::to_string(available - cursor) +
                                   " trailing bytes after the last tensor's data");

  data_ = whole.subspan(8 + n);
  tensors_ = std::move(tensors);
  metadata_ = std::move(parser.metadata);
  for (std::size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
}

const StTensorInfo* SafetensorsFile::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const StTensorInfo& SafetensorsFile::at(std::string_view name) const {
  if (const StTensorInfo* t = find(name)) return *t;
  throw FormatError(source_, "no tensor named " + quote_name(name));
}

std::span<const std::byte> SafetensorsFile::bytes(const StTensorInfo& info) const {
  // Guards against an info taken from another file, which would read past data_.
  if (info.end < info.begin || info.end > data_.size())
    throw std::invalid_argument("SafetensorsFile::bytes: tensor info is not from " + source_);
  return data_.subspan(info.begin, info.end - info.begin);
}

std::vector<float> SafetensorsFile::read_f32(std::string_view name) const {
  std::vector<float> out(static_cast<std::size_t>(at(name).numel()));
  read_f32_into(name, out);
  return out;
}

void SafetensorsFile::read_f32_into(std::string_view name, std::span<float> out) const {
  const StTensorInfo& t = at(name);
  const auto count = static_cast<std::size_t>(t.numel());
  if (out.size() != count)
    throw FormatError(source_, "tensor " + quote_name(name) + " has " + std::to_string(count) +
                                   " elements but the destination holds " + std::to_string(out.size()));
  const std::byte* p = bytes(t).data();
  switch (t.dtype) {
    case StDType::F32:
      if (count > 0) std::memcpy(out.data(), p, count * sizeof(float));
      return;
    case StDType::F64:
      for (std::size_t i = 0; i < count; ++i) out[i] = static_cast<float>(load<double>(p + 8 * i));
      return;
    case StDType::F16:
      for (std::size_t i = 0; i < count; ++i) out[i] = f16_to_f32(load<std::uint16_t>(p + 2 * i));
      return;
    case StDType::BF16:
      for (std::size_t i = 0; i < count; ++i) out[i] = bf16_to_f32(load<std::uint16_t>(p + 2 * i));
      return;
    default:
      throw FormatError(source_, "tensor " + quote_name(name) + " has dtype " + st_dtype_name(t.dtype) +
                                     "; expected F32, F16, BF16 or F64");
  }
}

std::vector<std::uint8_t> serialize_safetensors(std::vector<StTensorWrite> tensors,
                                                const std::map<std::string, std::string>& metadata) {
  const Prepared p = prepare(std::move(tensors), metadata, "safetensors writer");
  std::vector<std::uint8_t> out;
  out.reserve(8 + p.header.size() + p.data_bytes);
  const auto n = le64(p.header.size());
  out.insert(out.end(), n.begin(), n.end());
  out.insert(out.end(), p.header.begin(), p.header.end());
  for (const StTensorWrite& t : p.tensors) {
    const auto* d = reinterpret_cast<const std::uint8_t*>(t.data.data());
    out.insert(out.end(), d, d + t.data.size());
  }
  return out;
}

void write_safetensors(const std::filesystem::path& file, std::vector<StTensorWrite> tensors,
                       const std::map<std::string, std::string>& metadata) {
  // Prepared before anything touches the disk, so bad input leaves no file.
  const Prepared p = prepare(std::move(tensors), metadata, file.string());
  const auto n = le64(p.header.size());
  std::vector<std::span<const std::byte>> pieces = {std::as_bytes(std::span(n)),
                                                    std::as_bytes(std::span(p.header))};
  for (const StTensorWrite& t : p.tensors) pieces.push_back(t.data);
  write_file_atomically(file, pieces);
}

std::string shape_str(std::span<const std::int64_t> shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

}  // namespace lwb::io
