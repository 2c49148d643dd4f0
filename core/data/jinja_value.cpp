// Jinja values: Python's equality, truthiness, str(), repr() and
// json.dumps(), which templates observe character for character.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/common/errors.h"
#include "core/data/jinja_internal.h"

namespace lwb::data::jinja {

namespace {

int depth_of(const std::vector<Value>& items) {
  int d = 0;
  for (const Value& v : items) d = std::max(d, v.depth());
  return d + 1;
}

int depth_of(const std::vector<Value::Entry>& entries) {
  int d = 0;
  for (const auto& [k, v] : entries) d = std::max(d, v.depth());
  return d + 1;
}

std::size_t footprint_of(const std::vector<Value>& items) {
  std::size_t n = 0;
  for (const Value& v : items) n += v.footprint() + 16;
  return n;
}

std::size_t footprint_of(const std::vector<Value::Entry>& entries) {
  std::size_t n = 0;
  for (const auto& [k, v] : entries) n += k.size() + v.footprint() + 16;
  return n;
}

template <class T>
const T& as(const Value& v) {
  return static_cast<const T&>(*v.object());
}

// int == float compared exactly, as Python does.
bool int_equals_float(std::int64_t i, double f) {
  if (!(f >= -9.3e18 && f <= 9.3e18) || std::trunc(f) != f) return false;
  return static_cast<double>(i) == f && static_cast<std::int64_t>(f) == i;
}

}  // namespace

// ---- Value --------------------------------------------------------------------

Value Value::undefined(std::string name) {
  Value v;
  v.s_ = std::move(name);
  return v;
}

Value Value::none() {
  Value v;
  v.kind_ = Kind::None;
  return v;
}

Value Value::list(std::vector<Value> items, bool tuple) {
  auto obj = std::make_shared<ListObject>();
  obj->depth = depth_of(items);
  obj->footprint = footprint_of(items);
  obj->items = std::move(items);
  obj->tuple = tuple;
  return from_object(Kind::List, std::move(obj));
}

Value Value::dict(std::vector<Entry> entries) {
  auto obj = std::make_shared<DictObject>();
  obj->depth = depth_of(entries);
  obj->footprint = footprint_of(entries);
  obj->entries = std::move(entries);
  return from_object(Kind::Dict, std::move(obj));
}

Value Value::from_object(Kind kind, std::shared_ptr<Object> obj) {
  Value v;
  v.kind_ = kind;
  v.obj_ = std::move(obj);
  return v;
}

const std::vector<Value>& Value::items() const { return as<ListObject>(*this).items; }
bool Value::is_tuple() const { return as<ListObject>(*this).tuple; }
const std::vector<Value::Entry>& Value::entries() const { return as<DictObject>(*this).entries; }
const Value* Value::find(std::string_view key) const { return find_entry(entries(), key); }

int Value::depth() const {
  switch (kind_) {
    case Kind::List: return as<ListObject>(*this).depth;
    case Kind::Dict: return as<DictObject>(*this).depth;
    case Kind::Namespace: return depth_of(as<NamespaceObject>(*this).attrs);
    default: return 0;
  }
}

std::size_t Value::footprint() const {
  switch (kind_) {
    case Kind::String: return s_.size();
    case Kind::List: return as<ListObject>(*this).footprint;
    case Kind::Dict: return as<DictObject>(*this).footprint;
    case Kind::Namespace: return footprint_of(as<NamespaceObject>(*this).attrs);
    default: return 8;
  }
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::Undefined:
    case Kind::None: return false;
    case Kind::Bool: return b_;
    case Kind::Int: return i_ != 0;
    case Kind::Float: return f_ != 0;
    case Kind::String: return !s_.empty();
    case Kind::List: return !items().empty();
    case Kind::Dict: return !entries().empty();
    default: return true;
  }
}

bool operator==(const Value& a, const Value& b) {
  using K = Value::Kind;
  if (a.is_number() && b.is_number()) {
    if (a.kind() == K::Float && b.kind() == K::Float) return a.real() == b.real();
    const auto as_int = [](const Value& v) { return v.kind() == K::Bool ? std::int64_t{v.boolean()} : v.integer(); };
    if (a.kind() == K::Float) return int_equals_float(as_int(b), a.real());
    if (b.kind() == K::Float) return int_equals_float(as_int(a), b.real());
    return as_int(a) == as_int(b);
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case K::Undefined:
    case K::None: return true;
    case K::String: return a.text() == b.text();
    case K::List: return a.is_tuple() == b.is_tuple() && a.items() == b.items();
    case K::Dict: {
      if (a.entries().size() != b.entries().size()) return false;
      for (const auto& [k, v] : a.entries()) {
        const Value* w = b.find(k);
        if (!w || !(*w == v)) return false;
      }
      return true;
    }
    default: return a.object() == b.object();
  }
}

const char* type_name(const Value& v) {
  using K = Value::Kind;
  switch (v.kind()) {
    case K::Undefined: return "Undefined";
    case K::None: return "NoneType";
    case K::Bool: return "bool";
    case K::Int: return "int";
    case K::Float: return "float";
    case K::String: return "str";
    case K::List: return v.is_tuple() ? "tuple" : "list";
    case K::Dict: return "dict";
    case K::Namespace: return "Namespace";
    case K::Function: return "function";
  }
  return "object";
}

Value make_function(std::string name, std::function<Value(Interpreter&, CallArgs&, int)> call) {
  auto obj = std::make_shared<FunctionObject>();
  obj->name = std::move(name);
  obj->call = std::move(call);
  return Value::from_object(Value::Kind::Function, std::move(obj));
}

const Value* find_entry(const std::vector<Value::Entry>& entries, std::string_view key) {
  for (const auto& [k, v] : entries)
    if (k == key) return &v;
  return nullptr;
}

void set_entry(std::vector<Value::Entry>& entries, const std::string& key, Value v) {
  for (auto& [k, old] : entries)
    if (k == key) {
      old = std::move(v);
      return;
    }
  entries.emplace_back(key, std::move(v));
}

// ---- UTF-8 --------------------------------------------------------------------

std::uint32_t decode_utf8(std::string_view s, std::size_t& i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  const int n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
  if (n <= 0 || i + n >= s.size()) {
    ++i;
    return c;
  }
  std::uint32_t cp = c & (0x7F >> (n + 1));
  for (int k = 1; k <= n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) {
      ++i;
      return c;
    }
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  i += n + 1;
  return cp;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t start = i;
    const std::uint32_t cp = decode_utf8(s, i);
    const std::size_t n = i - start;
    const bool overlong = (n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
    if ((n == 1 && cp >= 0x80) || overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
  }
  return true;
}

std::vector<std::size_t> code_point_offsets(std::string_view s) {
  std::vector<std::size_t> offsets;
  offsets.reserve(s.size() + 1);
  for (std::size_t i = 0; i < s.size();) {
    offsets.push_back(i);
    decode_utf8(s, i);
  }
  offsets.push_back(s.size());
  return offsets;
}

std::size_t code_point_count(std::string_view s) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size(); ++n) decode_utf8(s, i);
  return n;
}

std::string backslash_escape(std::uint32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof buf, cp < 0x100 ? "\\x%02x" : cp < 0x10000 ? "\\u%04x" : "\\U%08x", cp);
  return buf;
}

bool is_space(std::uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

std::string_view strip(std::string_view s, bool left, bool right, const std::string* chars) {
  std::vector<std::uint32_t> set;
  if (chars)
    for (std::size_t i = 0; i < chars->size();) set.push_back(decode_utf8(*chars, i));
  const auto strippable = [&](std::uint32_t cp) {
    return chars ? std::find(set.begin(), set.end(), cp) != set.end() : is_space(cp);
  };
  std::size_t begin = 0, end = s.size();
  if (left)
    while (begin < end) {
      std::size_t i = begin;
      if (!strippable(decode_utf8(s, i))) break;
      begin = i;
    }
  if (right)
    while (end > begin) {
      std::size_t start = end - 1;
      while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
      std::size_t i = start;
      if (!strippable(decode_utf8(s, i)) || i != end) break;
      end = start;
    }
  return s.substr(begin, end - begin);
}

// ---- str(), repr(), json.dumps() ------------------------------------------------

namespace {

// float.__repr__: the shortest digits that round-trip, positional for
// exponents in [-4, 16), scientific otherwise.
std::string format_float(double f) {
  if (std::isnan(f)) return "nan";
  if (std::isinf(f)) return f < 0 ? "-inf" : "inf";
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::scientific);
  const std::string sci(buf, res.ptr);
  const std::size_t e_pos = sci.find('e');
  std::string mantissa = sci.substr(0, e_pos);
  const int exp = std::stoi(sci.substr(e_pos + 1));
  const bool negative = mantissa[0] == '-';
  if (negative) mantissa.erase(0, 1);
  std::string digits;
  for (char c : mantissa)
    if (c != '.') digits += c;
  std::string out = negative ? "-" : "";
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out += "0.";
      out.append(static_cast<std::size_t>(-exp - 1), '0');
      out += digits;
    } else {
      const auto int_len = static_cast<std::size_t>(exp) + 1;
      if (digits.size() <= int_len) {
        out += digits + std::string(int_len - digits.size(), '0') + ".0";
      } else {
        out += digits.substr(0, int_len) + "." + digits.substr(int_len);
      }
    }
  } else {
    out += digits.substr(0, 1);
    if (digits.size() > 1) {
      out += '.';
      out.append(digits, 1);
    }
    char e[16];
    std::snprintf(e, sizeof e, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    out += e;
  }
  return out;
}

// str.isprintable() for the code points templates meet; unassigned code points
// count as printable.
bool printable(std::uint32_t cp) {
  if (cp < 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0xAD) return false;
  if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202F)) return false;
  if ((cp >= 0x205F && cp <= 0x2064) || cp == 0x3000 || cp == 0xFEFF) return false;
  if ((cp >= 0xE000 && cp <= 0xF8FF) || cp >= 0xF0000) return false;
  return true;
}

void repr_string(std::string& out, const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos;
  const char quote = has_single && s.find('"') == std::string::npos ? '"' : '\'';
  out += quote;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t start = i;
    const std::uint32_t cp = decode_utf8(s, i);
    if (cp == static_cast<unsigned char>(quote) || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (printable(cp)) {
      out.append(s, start, i - start);
    } else {
      out += backslash_escape(cp);
    }
  }
  out += quote;
}

void repr(std::string& out, const Value& v);

void repr_entries(std::string& out, const std::vector<Value::Entry>& entries) {
  out += '{';
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (i) out += ", ";
    repr_string(out, entries[i].first);
    out += ": ";
    repr(out, entries[i].second);
  }
  out += '}';
}

void repr(std::string& out, const Value& v) {
  using K = Value::Kind;
  switch (v.kind()) {
    case K::Undefined: break;
    case K::String: repr_string(out, v.text()); break;
    case K::List: {
      out += v.is_tuple() ? '(' : '[';
      const auto& items = v.items();
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i) out += ", ";
        repr(out, items[i]);
      }
      if (v.is_tuple() && items.size() == 1) out += ',';
      out += v.is_tuple() ? ')' : ']';
      break;
    }
    case K::Dict: repr_entries(out, v.entries()); break;
    case K::Namespace:
      out += "<Namespace ";
      repr_entries(out, static_cast<const NamespaceObject&>(*v.object()).attrs);
      out += '>';
      break;
    case K::Function:
      out += "<function " + static_cast<const FunctionObject&>(*v.object()).name + ">";
      break;
    default: out += to_str(v);
  }
}

void json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t start = i;
    const std::uint32_t cp = decode_utf8(s, i);
    char buf[16];
    switch (cp) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (cp < 0x20 || (ensure_ascii && cp >= 0x7F && cp < 0x10000)) {
          std::snprintf(buf, sizeof buf, "\\u%04x", cp);
          out += buf;
        } else if (ensure_ascii && cp >= 0x10000) {
          const std::uint32_t v = cp - 0x10000;
          std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
          out += buf;
        } else {
          out.append(s, start, i - start);
        }
    }
  }
  out += '"';
}

struct JsonWriter {
  const JsonOptions& o;
  std::string out;

  void newline(int level) {
    if (o.indent < 0) return;
    const std::size_t n = static_cast<std::size_t>(o.indent) * static_cast<std::size_t>(level);
    if (out.size() + n + 1 > o.max_bytes) throw std::length_error("JSON text too long");
    out += '\n';
    out.append(n, ' ');
  }

  void write(const Value& v, int level) {
    using K = Value::Kind;
    if (out.size() > o.max_bytes) throw std::length_error("JSON text too long");
    const std::string item_sep = !o.item_separator.empty() ? o.item_separator : o.indent >= 0 ? "," : ", ";
    const std::string key_sep = !o.key_separator.empty() ? o.key_separator : ": ";
    switch (v.kind()) {
      case K::None: out += "null"; break;
      case K::Bool: out += v.boolean() ? "true" : "false"; break;
      case K::Int: out += std::to_string(v.integer()); break;
      case K::Float:
        out += std::isnan(v.real())   ? "NaN"
               : std::isinf(v.real()) ? (v.real() < 0 ? "-Infinity" : "Infinity")
                                      : format_float(v.real());
        break;
      case K::String: json_string(out, v.text(), o.ensure_ascii); break;
      case K::List: {
        const auto& items = v.items();
        if (items.empty()) {
          out += "[]";
          break;
        }
        out += '[';
        for (std::size_t i = 0; i < items.size(); ++i) {
          if (i) out += item_sep;
          newline(level + 1);
          write(items[i], level + 1);
        }
        newline(level);
        out += ']';
        break;
      }
      case K::Dict: {
        std::vector<const Value::Entry*> entries;
        for (const auto& e : v.entries()) entries.push_back(&e);
        if (entries.empty()) {
          out += "{}";
          break;
        }
        if (o.sort_keys)
          std::stable_sort(entries.begin(), entries.end(), [](auto* a, auto* b) { return a->first < b->first; });
        out += '{';
        for (std::size_t i = 0; i < entries.size(); ++i) {
          if (i) out += item_sep;
          newline(level + 1);
          json_string(out, entries[i]->first, o.ensure_ascii);
          out += key_sep;
          write(entries[i]->second, level + 1);
        }
        newline(level);
        out += '}';
        break;
      }
      case K::Undefined: throw std::invalid_argument("Object of type Undefined is not JSON serializable");
      case K::Namespace: throw std::invalid_argument("Object of type Namespace is not JSON serializable");
      case K::Function: throw std::invalid_argument("Object of type function is not JSON serializable");
    }
  }
};

Value from_json_node(const nlohmann::ordered_json& j, int depth, const std::string& source) {
  if (depth > 256) throw FormatError(source, "JSON nested deeper than 256 levels");
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return Value::none();
    case nlohmann::ordered_json::value_t::boolean: return Value(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value(j.get<std::int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const auto u = j.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(INT64_MAX)) return Value(static_cast<double>(u));
      return Value(static_cast<std::int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float: return Value(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      for (const auto& x : j) items.push_back(from_json_node(x, depth + 1, source));
      return Value::list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      std::vector<Value::Entry> entries;
      for (const auto& [k, x] : j.items()) entries.emplace_back(k, from_json_node(x, depth + 1, source));
      return Value::dict(std::move(entries));
    }
    default: throw FormatError(source, "JSON value of an unsupported type");
  }
}

}  // namespace

std::string to_str(const Value& v) {
  using K = Value::Kind;
  switch (v.kind()) {
    case K::Undefined: return "";
    case K::None: return "None";
    case K::Bool: return v.boolean() ? "True" : "False";
    case K::Int: return std::to_string(v.integer());
    case K::Float: return format_float(v.real());
    case K::String: return v.text();
    default: {
      std::string out;
      repr(out, v);
      return out;
    }
  }
}

std::string to_repr(const Value& v) {
  std::string out;
  repr(out, v);
  return out;
}

std::string to_json(const Value& v, const JsonOptions& options) {
  JsonWriter w{options, {}};
  w.write(v, 0);
  if (w.out.size() > options.max_bytes) throw std::length_error("JSON text too long");
  return std::move(w.out);
}

Value Value::from_json(std::string_view text, const std::string& source) {
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(source, std::string("not valid JSON: ") + e.what());
  }
  return from_json_node(j, 0, source);
}

}  // namespace lwb::data::jinja
