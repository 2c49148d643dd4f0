#pragma once
// A Jinja subset, written to render the chat templates models ship in
// tokenizer_config.json or GGUF metadata exactly as Hugging Face transformers
// does: jinja2's ImmutableSandboxedEnvironment with trim_blocks and
// lstrip_blocks, loop controls, transformers' tojson, raise_exception,
// strftime_now and namespace. Anything outside the subset is refused with a
// FormatError naming the template and line, never rendered differently.
//
// Values follow Python semantics where templates can observe them: Python's
// str() of numbers, lists and dicts, its truthiness, equality and slicing,
// insertion-ordered dicts, and jinja2's default Undefined (empty when printed,
// false, iterable as nothing; any other use is an error).
//
// Known differences, none met by real chat templates: upper/lower/title/
// capitalize change ASCII letters only; repr() escapes a fixed list of
// non-printable code points rather than Python's Unicode tables; integers are
// 64-bit (overflow is an error); dict keys are strings; a namespace cannot
// hold a namespace or a function; macros take no caller, varargs or kwargs.
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lwb::data::jinja {

struct Object;

class Value {
 public:
  enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Namespace, Function };
  using Entry = std::pair<std::string, Value>;

  Value() = default;  // undefined
  Value(bool b) : kind_(Kind::Bool), b_(b) {}
  Value(int i) : kind_(Kind::Int), i_(i) {}
  Value(std::int64_t i) : kind_(Kind::Int), i_(i) {}
  Value(double f) : kind_(Kind::Float), f_(f) {}
  Value(std::string s) : kind_(Kind::String), s_(std::move(s)) {}
  Value(const char* s) : Value(std::string(s)) {}

  // `name` is what the template called it, for error messages.
  static Value undefined(std::string name);
  static Value none();
  static Value list(std::vector<Value> items, bool tuple = false);
  static Value dict(std::vector<Entry> entries);
  // JSON text → Value (objects keep their key order). FormatError(source, ...)
  // when the text is not JSON.
  static Value from_json(std::string_view text, const std::string& source);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::Undefined; }
  bool is_none() const { return kind_ == Kind::None; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_list() const { return kind_ == Kind::List; }
  bool is_dict() const { return kind_ == Kind::Dict; }
  bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Float || kind_ == Kind::Bool; }

  bool boolean() const { return b_; }
  std::int64_t integer() const { return i_; }
  double real() const { return f_; }
  // The string of a String; the name of an Undefined.
  const std::string& text() const { return s_; }
  const std::vector<Value>& items() const;         // List
  bool is_tuple() const;                           // List
  const std::vector<Entry>& entries() const;       // Dict
  const Value* find(std::string_view key) const;   // Dict: nullptr when absent
  // Nesting depth of lists and dicts (0 for scalars); bounds every recursion
  // over a value.
  int depth() const;
  // Approximate bytes held (strings' bytes, 16 per list or dict element),
  // which bounds the memory one render can take.
  std::size_t footprint() const;

  // Python's bool().
  bool truthy() const;
  // Python's ==.
  friend bool operator==(const Value& a, const Value& b);

  const std::shared_ptr<Object>& object() const { return obj_; }
  static Value from_object(Kind kind, std::shared_ptr<Object> obj);

 private:
  Kind kind_ = Kind::Undefined;
  union {
    bool b_;
    std::int64_t i_;
    double f_ = 0;
  };
  std::string s_;
  std::shared_ptr<Object> obj_;  // List, Dict, Namespace, Function
};

// Python's str() of a value (jinja2 prints values with it); undefined → "".
std::string to_str(const Value& v);
// Python's repr().
std::string to_repr(const Value& v);
// json.dumps's options, as transformers' tojson filter passes them.
struct JsonOptions {
  int indent = -1;  // none
  bool sort_keys = false;
  bool ensure_ascii = false;
  std::string item_separator, key_separator;  // empty: json.dumps's defaults for the indent
  std::size_t max_bytes = SIZE_MAX;
};
// json.dumps(v, ...). Throws std::invalid_argument for what JSON cannot hold
// (undefined values, namespaces, functions) and std::length_error past max_bytes.
std::string to_json(const Value& v, const JsonOptions& options = {});

// Bounds on one render, so that hostile templates end in an error rather than
// a hang or an exhausted memory.
struct Limits {
  // Evaluation steps: one per expression node, statement and loop iteration,
  // plus one per element or 64 bytes a builtin touches.
  std::int64_t max_steps = 20'000'000;
  // Rendered text, and any single string or list (in bytes or items).
  std::size_t max_bytes = std::size_t{16} << 20;
  // Nested macro calls.
  int max_call_depth = 32;
};

struct RenderSettings {
  Limits limits;
  // The clock strftime_now() reads (local time); the current time when empty.
  std::optional<std::time_t> now;
};

struct Program;

class Template {
 public:
  // Parses `text`. `source` names the template in every error, e.g.
  // "models/x/tokenizer_config.json: chat_template". FormatError(source,
  // "line N: ...") for a syntax error or a construct outside the subset.
  Template(std::string_view text, std::string source);

  // Renders with `variables` as the template's top-level names, beside the
  // globals range, namespace, dict, raise_exception and strftime_now.
  // raise_exception(msg) → lwb::DataError naming the source, line and msg; any
  // other evaluation error, or a limit reached → FormatError(source, "line N: ...").
  std::string render(const std::vector<Value::Entry>& variables, const RenderSettings& settings = {}) const;

  const std::string& source() const { return source_; }

 private:
  std::shared_ptr<const Program> program_;
  std::string source_;
};

}  // namespace lwb::data::jinja
