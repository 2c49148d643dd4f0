#include "core/format/gguf.h"

#include <bit>
#include <cstring>
#include <limits>
#include <optional>
#include <set>
#include <stdexcept>

#include "core/common/errors.h"
#include "core/format/atomic_file.h"

namespace lwb::format {

static_assert(std::endian::native == std::endian::little, "GGUF I/O assumes a little-endian host");

namespace {

constexpr std::uint32_t kDefaultAlignment = 32;
constexpr int kMaxDims = 4;
// Real files nest arrays at most once; a bound keeps hostile input from
// exhausting the stack.
constexpr int kMaxArrayDepth = 8;

std::string quote(std::string_view s) {
  // Untrusted names can be long; keep messages readable.
  constexpr std::size_t kMax = 80;
  if (s.size() <= kMax) return "\"" + std::string(s) + "\"";
  return "\"" + std::string(s.substr(0, kMax)) + "...\"";
}

std::string dims_str(const std::vector<std::uint64_t>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

bool is_known(GgufType t) { return static_cast<std::uint32_t>(t) <= static_cast<std::uint32_t>(GgufType::F64); }

// Bytes of a scalar value; strings and arrays have none fixed.
std::size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::Bool: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: return 8;
    default: return 0;
  }
}

// The fewest bytes one value of type t takes, to refuse counts the rest of
// the file cannot hold before anything is allocated for them.
std::uint64_t min_value_size(GgufType t) {
  if (t == GgufType::String) return 8;                  // u64 length
  if (t == GgufType::Array) return 4 + 8;               // element type, count
  return scalar_size(t);
}

std::uint64_t align_up(std::uint64_t v, std::uint64_t alignment) {
  return (v + alignment - 1) / alignment * alignment;  // callers keep v far below 2^64
}

// Reads the little-endian fields in order, refusing to step past the end.
class Cursor {
 public:
  Cursor(std::span<const std::byte> bytes, const std::string& source) : bytes_(bytes), source_(source) {}

  std::uint64_t pos() const { return pos_; }
  std::uint64_t remaining() const { return bytes_.size() - pos_; }
  // Prefixed to the messages: the key or tensor being read.
  std::string context;

  [[noreturn]] void fail(const std::string& message) const { throw FormatError(source_, context + message); }

  void need(std::uint64_t n, const char* what) const {
    if (n > remaining())
      fail("truncated: " + std::string(what) + " at byte " + std::to_string(pos_) + " needs " + std::to_string(n) +
           " bytes but only " + std::to_string(remaining()) + " remain");
  }

  template <class T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof v);
    pos_ += sizeof v;
    return v;
  }

  std::string read_string(const char* what) {
    const auto n = read<std::uint64_t>(what);
    need(n, what);
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), n);
    pos_ += n;
    return s;
  }

  void seek(std::uint64_t pos) { pos_ = pos; }

 private:
  std::span<const std::byte> bytes_;
  const std::string& source_;
  std::uint64_t pos_ = 0;
};

GgufType read_type(Cursor& in, const char* what) {
  const auto code = in.read<std::uint32_t>(what);
  if (!is_known(static_cast<GgufType>(code)))
    in.fail("unknown value type " + std::to_string(code) + " (expected 0..12)");
  return static_cast<GgufType>(code);
}

GgufValue read_value(Cursor& in, GgufType type, int depth) {
  GgufValue v;
  v.type = type;
  switch (type) {
    case GgufType::U8: v.data = std::uint64_t{in.read<std::uint8_t>("a u8 value")}; break;
    case GgufType::U16: v.data = std::uint64_t{in.read<std::uint16_t>("a u16 value")}; break;
    case GgufType::U32: v.data = std::uint64_t{in.read<std::uint32_t>("a u32 value")}; break;
    case GgufType::U64: v.data = in.read<std::uint64_t>("a u64 value"); break;
    case GgufType::I8: v.data = std::int64_t{in.read<std::int8_t>("an i8 value")}; break;
    case GgufType::I16: v.data = std::int64_t{in.read<std::int16_t>("an i16 value")}; break;
    case GgufType::I32: v.data = std::int64_t{in.read<std::int32_t>("an i32 value")}; break;
    case GgufType::I64: v.data = in.read<std::int64_t>("an i64 value"); break;
    case GgufType::F32: v.data = in.read<float>("an f32 value"); break;
    case GgufType::F64: v.data = in.read<double>("an f64 value"); break;
    case GgufType::Bool: {
      const auto b = in.read<std::uint8_t>("a bool value");
      // Any other byte would not survive a round trip.
      if (b > 1) in.fail("bool value is " + std::to_string(b) + "; expected 0 or 1");
      v.data = b == 1;
      break;
    }
    case GgufType::String: v.data = in.read_string("a string value"); break;
    case GgufType::Array: {
      if (depth >= kMaxArrayDepth) in.fail("arrays nested deeper than " + std::to_string(kMaxArrayDepth) + " levels");
      v.elem = read_type(in, "an array's element type");
      const auto count = in.read<std::uint64_t>("an array's length");
      const std::uint64_t least = min_value_size(v.elem);
      if (count > in.remaining() / least)
        in.fail("truncated: an array of " + std::to_string(count) + " " + gguf_type_name(v.elem) +
                " values at byte " + std::to_string(in.pos()) + " needs at least " + std::to_string(least) +
                " bytes each but only " + std::to_string(in.remaining()) + " remain");
      GgufValue::Array items;
      items.reserve(count);
      for (std::uint64_t i = 0; i < count; ++i) items.push_back(read_value(in, v.elem, depth + 1));
      v.data = std::move(items);
      break;
    }
  }
  return v;
}

}  // namespace

const char* gguf_type_name(GgufType type) {
  static const char* names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                "bool", "string", "array", "u64", "i64", "f64"};
  if (!is_known(type)) throw std::invalid_argument("invalid GgufType value");
  return names[static_cast<std::uint32_t>(type)];
}

std::string GgufValue::type_text() const {
  auto name = [](GgufType t) {
    return is_known(t) ? std::string(gguf_type_name(t)) : "type " + std::to_string(static_cast<std::uint32_t>(t));
  };
  return type == GgufType::Array ? "array of " + name(elem) : name(type);
}

std::uint64_t GgufTensorInfo::numel() const {
  std::uint64_t n = 1;
  for (std::uint64_t d : dims) n *= d;
  return n;
}

std::vector<std::int64_t> GgufTensorInfo::shape() const {
  return {dims.rbegin(), dims.rend()};
}

GgufFile GgufFile::open(const std::filesystem::path& file) {
  GgufFile f;
  f.source_ = file.string();
  f.input_ = InputBytes::map(file);
  f.parse();
  return f;
}

GgufFile GgufFile::from_bytes(std::vector<std::uint8_t> bytes, std::string label) {
  GgufFile f;
  f.source_ = std::move(label);
  f.input_ = InputBytes::hold(std::move(bytes));
  f.parse();
  return f;
}

void GgufFile::parse() {
  const std::span<const std::byte> whole = input_.bytes();
  Cursor in(whole, source_);

  in.need(4, "the magic");
  if (std::memcmp(whole.data(), "GGUF", 4) != 0) {
    std::string seen;
    for (int i = 0; i < 4; ++i) {
      const auto c = std::to_integer<unsigned char>(whole[i]);
      seen += (c >= 0x20 && c < 0x7F) ? static_cast<char>(c) : '?';
    }
    in.fail("not a GGUF file: it starts with \"" + seen + "\", expected \"GGUF\"");
  }
  in.seek(4);
  version_ = in.read<std::uint32_t>("the version");
  if (version_ != 2 && version_ != 3) {
    if (version_ == 1) in.fail("GGUF version 1 (32-bit counts) is not supported; expected version 2 or 3");
    // A big-endian file's version reads as 0x02000000 or 0x03000000 here.
    if (version_ == 0x02000000u || version_ == 0x03000000u)
      in.fail("big-endian GGUF files are not supported (the version reads as " + std::to_string(version_) + ")");
    in.fail("unsupported GGUF version " + std::to_string(version_) + "; expected 2 or 3");
  }
  const auto n_tensors = in.read<std::uint64_t>("the tensor count");
  const auto n_kv = in.read<std::uint64_t>("the metadata count");
  // A key takes at least 8 + 1 bytes, its type 4 and its value 1.
  if (n_kv > in.remaining() / 14)
    in.fail("truncated: " + std::to_string(n_kv) + " metadata entries cannot fit in the " +
            std::to_string(in.remaining()) + " bytes that remain");

  metadata_.reserve(n_kv);
  for (std::uint64_t i = 0; i < n_kv; ++i) {
    in.context = "metadata entry " + std::to_string(i) + ": ";
    std::string key = in.read_string("a key");
    if (key.empty()) in.fail("empty key; expected a non-empty name");
    in.context = "key " + quote(key) + ": ";
    if (key_index_.contains(key)) in.fail("duplicate key");
    const GgufType type = read_type(in, "a value type");
    GgufValue value = read_value(in, type, 0);
    key_index_.emplace(key, metadata_.size());
    metadata_.emplace_back(std::move(key), std::move(value));
  }
  in.context.clear();

  if (const GgufValue* a = find("general.alignment")) {
    in.context = "key \"general.alignment\": ";
    if (a->type != GgufType::U32) in.fail("expected u32, got " + a->type_text());
    const auto v = std::get<std::uint64_t>(a->data);
    if (v == 0 || (v & (v - 1)) != 0) in.fail(std::to_string(v) + " is not a power of two");
    alignment_ = static_cast<std::uint32_t>(v);
    in.context.clear();
  }

  // A tensor info takes at least 8 + 1 (name), 4 (n_dims), 4 (type) and 8 (offset) bytes.
  if (n_tensors > in.remaining() / 25)
    in.fail("truncated: " + std::to_string(n_tensors) + " tensor infos cannot fit in the " +
            std::to_string(in.remaining()) + " bytes that remain");
  tensors_.reserve(n_tensors);
  for (std::uint64_t i = 0; i < n_tensors; ++i) {
    in.context = "tensor info " + std::to_string(i) + ": ";
    GgufTensorInfo t;
    t.name = in.read_string("a tensor name");
    if (t.name.empty()) in.fail("empty tensor name; expected a non-empty name");
    in.context = "tensor " + quote(t.name) + ": ";
    if (tensor_index_.contains(t.name)) in.fail("duplicate tensor name");
    const auto n_dims = in.read<std::uint32_t>("the number of dimensions");
    if (n_dims > kMaxDims)
      in.fail(std::to_string(n_dims) + " dimensions; at most " + std::to_string(kMaxDims) + " are allowed");
    std::uint64_t numel = 1;
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      t.dims.push_back(in.read<std::uint64_t>("a dimension"));
      // ggml holds element counts in int64.
      if (__builtin_mul_overflow(numel, t.dims.back(), &numel) ||
          numel > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        while (++d < n_dims) t.dims.push_back(in.read<std::uint64_t>("a dimension"));
        in.fail("shape " + dims_str(t.dims) + " has more than 2^63 - 1 elements");
      }
    }
    const auto code = in.read<std::uint32_t>("the tensor type");
    const GgmlTypeInfo* info = ggml_type_info(code);
    if (!info) in.fail("unknown ggml type code " + std::to_string(code));
    t.type = info->type;
    const std::uint64_t row = t.dims.empty() ? 1 : t.dims[0];
    if (row % info->block_size != 0)
      in.fail("rows of " + std::to_string(row) + " elements are not whole " + info->name + " blocks of " +
              std::to_string(info->block_size));
    if (__builtin_mul_overflow(numel / info->block_size, std::uint64_t{info->type_size}, &t.nbytes))
      in.fail("shape " + dims_str(t.dims) + " of " + info->name + " needs more than 2^64 bytes");
    t.offset = in.read<std::uint64_t>("the data offset");
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }
  in.context.clear();

  // The data section starts at the next multiple of the alignment, and the
  // tensors follow each other in order, each padded to it (ggml's rule: any
  // other offset is refused there too).
  const std::uint64_t size = whole.size();
  data_offset_ = align_up(in.pos(), alignment_);
  // cursor stays within the file (plus one alignment), so no sum overflows.
  std::uint64_t cursor = 0;
  for (const GgufTensorInfo& t : tensors_) {
    if (t.offset != cursor)
      throw FormatError(source_, "tensor " + quote(t.name) + ": data offset " + std::to_string(t.offset) +
                                     ", expected " + std::to_string(cursor) +
                                     " (tensors follow each other in order, each padded to the alignment of " +
                                     std::to_string(alignment_) + ")");
    // The last tensor's padding may be missing (llama.cpp reads such files).
    if (data_offset_ + t.offset > size || t.nbytes > size - data_offset_ - t.offset)
      throw FormatError(source_, "truncated: tensor " + quote(t.name) + " needs bytes " +
                                     std::to_string(data_offset_ + t.offset) + " to " +
                                     std::to_string(data_offset_ + t.offset) + " + " + std::to_string(t.nbytes) +
                                     " but the file has " + std::to_string(size));
    cursor = align_up(t.offset + t.nbytes, alignment_);
  }
  const std::uint64_t end = data_offset_ + cursor;
  if (size > end)
    throw FormatError(source_, std::to_string(size - end) + " trailing bytes after the " +
                                   (tensors_.empty() ? "metadata" : "last tensor's data"));
}

const GgufValue* GgufFile::find(std::string_view key) const {
  const auto it = key_index_.find(key);
  return it == key_index_.end() ? nullptr : &metadata_[it->second].second;
}

const GgufValue& GgufFile::at(std::string_view key) const {
  if (const GgufValue* v = find(key)) return *v;
  throw FormatError(source_, "no metadata key " + quote(key));
}

namespace {

const GgufValue& expect(const GgufValue& v, GgufType type, std::string_view key, const std::string& source) {
  if (v.type != type)
    throw FormatError(source, "key " + quote(key) + ": expected " + gguf_type_name(type) + ", got " + v.type_text());
  return v;
}

}  // namespace

std::uint32_t GgufFile::get_u32(std::string_view key) const {
  return static_cast<std::uint32_t>(std::get<std::uint64_t>(expect(at(key), GgufType::U32, key, source_).data));
}

float GgufFile::get_f32(std::string_view key) const {
  return std::get<float>(expect(at(key), GgufType::F32, key, source_).data);
}

bool GgufFile::get_bool(std::string_view key) const {
  return std::get<bool>(expect(at(key), GgufType::Bool, key, source_).data);
}

const std::string& GgufFile::get_string(std::string_view key) const {
  return std::get<std::string>(expect(at(key), GgufType::String, key, source_).data);
}

const GgufValue::Array& GgufFile::get_array(std::string_view key, GgufType elem) const {
  const GgufValue& v = at(key);
  if (v.type != GgufType::Array || v.elem != elem)
    throw FormatError(source_, "key " + quote(key) + ": expected array of " + gguf_type_name(elem) + ", got " +
                                   v.type_text());
  return std::get<GgufValue::Array>(v.data);
}

std::vector<std::string> GgufFile::get_strings(std::string_view key) const {
  std::vector<std::string> out;
  for (const GgufValue& v : get_array(key, GgufType::String)) out.push_back(std::get<std::string>(v.data));
  return out;
}

std::vector<float> GgufFile::get_f32s(std::string_view key) const {
  std::vector<float> out;
  for (const GgufValue& v : get_array(key, GgufType::F32)) out.push_back(std::get<float>(v.data));
  return out;
}

std::vector<std::int32_t> GgufFile::get_i32s(std::string_view key) const {
  std::vector<std::int32_t> out;
  for (const GgufValue& v : get_array(key, GgufType::I32))
    out.push_back(static_cast<std::int32_t>(std::get<std::int64_t>(v.data)));
  return out;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensorInfo& GgufFile::tensor(std::string_view name) const {
  if (const GgufTensorInfo* t = find_tensor(name)) return *t;
  throw FormatError(source_, "no tensor named " + quote(name));
}

std::span<const std::byte> GgufFile::bytes(const GgufTensorInfo& info) const {
  const std::span<const std::byte> whole = input_.bytes();
  // Guards against an info taken from another file, which would read past the end.
  if (info.offset > whole.size() || info.nbytes > whole.size() - info.offset ||
      data_offset_ > whole.size() - info.offset - info.nbytes)
    throw std::invalid_argument("GgufFile::bytes: tensor info is not from " + source_);
  return whole.subspan(data_offset_ + info.offset, info.nbytes);
}

std::vector<float> GgufFile::read_f32(std::string_view name) const {
  std::vector<float> out(tensor(name).numel());
  read_f32_into(name, out);
  return out;
}

void GgufFile::read_f32_into(std::string_view name, std::span<float> out) const {
  const GgufTensorInfo& t = tensor(name);
  if (!can_dequantize(t.type))
    throw FormatError(source_, "tensor " + quote(name) + " has type " + ggml_type_name(t.type) +
                                   ", which cannot be converted to float here (supported: " +
                                   dequantizable_type_names() + ")");
  if (out.size() != t.numel())
    throw FormatError(source_, "tensor " + quote(name) + " has " + std::to_string(t.numel()) +
                                   " elements but the destination holds " + std::to_string(out.size()));
  dequantize(t.type, bytes(t), out);
}

// ---- writer -----------------------------------------------------------------

namespace {

class Writer {
 public:
  explicit Writer(const std::string& label) : label_(label) {}
  std::vector<std::uint8_t> out;

  template <class T>
  void put(T v) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
    out.insert(out.end(), p, p + sizeof v);
  }
  void put_string(const std::string& s) {
    put<std::uint64_t>(s.size());
    out.insert(out.end(), s.begin(), s.end());
  }

  void put_value(const GgufValue& v, const std::string& key) {
    auto bad = [&] {
      throw FormatError(label_, "key " + quote(key) + ": a value of " + v.type_text() +
                                    " holds data of another kind or range");
    };
    auto in_range = [&](auto lo, auto hi) {
      using T = decltype(lo);
      const T* x = std::get_if<T>(&v.data);
      if (!x || *x < lo || *x > hi) bad();
      return *x;
    };
    using u64 = std::uint64_t;
    using i64 = std::int64_t;
    switch (v.type) {
      case GgufType::U8: put(static_cast<std::uint8_t>(in_range(u64{0}, u64{0xFF}))); break;
      case GgufType::U16: put(static_cast<std::uint16_t>(in_range(u64{0}, u64{0xFFFF}))); break;
      case GgufType::U32: put(static_cast<std::uint32_t>(in_range(u64{0}, u64{0xFFFFFFFF}))); break;
      case GgufType::U64: put(in_range(u64{0}, std::numeric_limits<u64>::max())); break;
      case GgufType::I8: put(static_cast<std::int8_t>(in_range(i64{-128}, i64{127}))); break;
      case GgufType::I16: put(static_cast<std::int16_t>(in_range(i64{-32768}, i64{32767}))); break;
      case GgufType::I32:
        put(static_cast<std::int32_t>(in_range(i64{std::numeric_limits<std::int32_t>::min()},
                                               i64{std::numeric_limits<std::int32_t>::max()})));
        break;
      case GgufType::I64: put(in_range(std::numeric_limits<i64>::min(), std::numeric_limits<i64>::max())); break;
      case GgufType::F32: {
        const float* x = std::get_if<float>(&v.data);
        if (!x) bad();
        put(*x);
        break;
      }
      case GgufType::F64: {
        const double* x = std::get_if<double>(&v.data);
        if (!x) bad();
        put(*x);
        break;
      }
      case GgufType::Bool: {
        const bool* x = std::get_if<bool>(&v.data);
        if (!x) bad();
        put<std::uint8_t>(*x ? 1 : 0);
        break;
      }
      case GgufType::String: {
        const std::string* x = std::get_if<std::string>(&v.data);
        if (!x) bad();
        put_string(*x);
        break;
      }
      case GgufType::Array: {
        const GgufValue::Array* x = std::get_if<GgufValue::Array>(&v.data);
        if (!x || !is_known(v.elem)) bad();
        put(static_cast<std::uint32_t>(v.elem));
        put<std::uint64_t>(x->size());
        for (const GgufValue& item : *x) {
          if (item.type != v.elem)
            throw FormatError(label_, "key " + quote(key) + ": an item of an array of " + gguf_type_name(v.elem) +
                                          " is a " + item.type_text());
          put_value(item, key);
        }
        break;
      }
      default: bad();
    }
  }

 private:
  const std::string& label_;
};

struct Layout {
  std::vector<std::uint8_t> header;  // everything before the data section, padded
  std::uint32_t alignment = kDefaultAlignment;
};

Layout lay_out(const GgufMetadata& metadata, const std::vector<GgufTensorWrite>& tensors, const std::string& label) {
  Writer w(label);
  Layout layout;
  w.out.insert(w.out.end(), {'G', 'G', 'U', 'F'});
  w.put<std::uint32_t>(3);
  w.put<std::uint64_t>(tensors.size());
  w.put<std::uint64_t>(metadata.size());
  std::set<std::string_view> keys;
  for (const auto& [key, value] : metadata) {
    if (key.empty()) throw FormatError(label, "a metadata key is empty");
    if (!keys.insert(key).second) throw FormatError(label, "duplicate key " + quote(key));
    if (key == "general.alignment") {
      const auto* v = std::get_if<std::uint64_t>(&value.data);
      if (value.type != GgufType::U32 || !v || *v == 0 || *v > 0xFFFFFFFFu || (*v & (*v - 1)) != 0)
        throw FormatError(label, "key \"general.alignment\": expected a u32 power of two");
      layout.alignment = static_cast<std::uint32_t>(*v);
    }
    w.put_string(key);
    w.put(static_cast<std::uint32_t>(value.type));
    w.put_value(value, key);
  }
  std::set<std::string_view> names;
  std::uint64_t offset = 0;
  for (const GgufTensorWrite& t : tensors) {
    const std::string ctx = "tensor " + quote(t.name) + ": ";
    if (t.name.empty()) throw FormatError(label, "a tensor name is empty");
    if (!names.insert(t.name).second) throw FormatError(label, "duplicate tensor name " + quote(t.name));
    if (t.dims.size() > kMaxDims)
      throw FormatError(label, ctx + std::to_string(t.dims.size()) + " dimensions; at most 4 are allowed");
    const GgmlTypeInfo& info = ggml_type_info(t.type);
    std::uint64_t numel = 1;
    for (std::uint64_t d : t.dims)
      if (__builtin_mul_overflow(numel, d, &numel)) throw FormatError(label, ctx + "shape overflows 64 bits");
    const std::uint64_t row = t.dims.empty() ? 1 : t.dims[0];
    std::uint64_t nbytes = 0;
    if (row % info.block_size != 0 || __builtin_mul_overflow(numel / info.block_size, info.type_size, &nbytes) ||
        nbytes != t.data.size())
      throw FormatError(label, ctx + "shape " + dims_str(t.dims) + " of " + info.name + " does not match its " +
                                   std::to_string(t.data.size()) + " data bytes");
    w.put_string(t.name);
    w.put<std::uint32_t>(static_cast<std::uint32_t>(t.dims.size()));
    for (std::uint64_t d : t.dims) w.put(d);
    w.put(static_cast<std::uint32_t>(t.type));
    w.put(offset);
    offset = align_up(offset + t.data.size(), layout.alignment);
  }
  w.out.resize(align_up(w.out.size(), layout.alignment), 0);
  layout.header = std::move(w.out);
  return layout;
}

}  // namespace

std::vector<std::uint8_t> serialize_gguf(const GgufMetadata& metadata, const std::vector<GgufTensorWrite>& tensors,
                                         const std::string& label) {
  Layout layout = lay_out(metadata, tensors, label);
  std::vector<std::uint8_t> out = std::move(layout.header);
  for (const GgufTensorWrite& t : tensors) {
    const auto* d = reinterpret_cast<const std::uint8_t*>(t.data.data());
    out.insert(out.end(), d, d + t.data.size());
    out.resize(align_up(out.size(), layout.alignment), 0);
  }
  return out;
}

void write_gguf(const std::filesystem::path& file, const GgufMetadata& metadata,
                const std::vector<GgufTensorWrite>& tensors) {
  // Laid out before anything touches the disk, so bad input leaves no file.
  const Layout layout = lay_out(metadata, tensors, file.string());
  const std::vector<std::byte> zeros(layout.alignment);
  std::vector<std::span<const std::byte>> pieces = {std::as_bytes(std::span(layout.header))};
  for (const GgufTensorWrite& t : tensors) {
    pieces.push_back(t.data);
    const std::size_t pad = align_up(t.data.size(), layout.alignment) - t.data.size();
    if (pad > 0) pieces.push_back(std::span(zeros).first(pad));
  }
  io::write_file_atomically(file, pieces);
}

}  // namespace lwb::format
