#pragma once
// Shared by the Jinja parser, interpreter and builtins; not part of the API.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/data/jinja.h"

namespace lwb::data::jinja {

// ---- values -----------------------------------------------------------------

struct Object {
  virtual ~Object() = default;
};

struct ListObject : Object {
  std::vector<Value> items;
  bool tuple = false;
  int depth = 1;
  std::size_t footprint = 0;
};

struct DictObject : Object {
  std::vector<Value::Entry> entries;
  int depth = 1;
  std::size_t footprint = 0;
};

// namespace(): the one mutable value, so that loops can carry state out.
struct NamespaceObject : Object {
  std::vector<Value::Entry> attrs;
};

class Interpreter;

struct CallArgs {
  std::vector<Value> positional;
  std::vector<Value::Entry> named;
};

struct FunctionObject : Object {
  std::string name;
  std::function<Value(Interpreter&, CallArgs&, int line)> call;
};

// Python's type name, for messages.
const char* type_name(const Value& v);
Value make_function(std::string name, std::function<Value(Interpreter&, CallArgs&, int line)> call);
// The pointer to a key's value in a dict's or namespace's entries; nullptr when absent.
const Value* find_entry(const std::vector<Value::Entry>& entries, std::string_view key);
// Python's d[key] = v: replaces the value in place, or appends the key.
void set_entry(std::vector<Value::Entry>& entries, const std::string& key, Value v);

// ---- UTF-8 (template text and values are valid UTF-8; stray bytes count as
// one code point each so that nothing reads out of bounds) --------------------

std::uint32_t decode_utf8(std::string_view s, std::size_t& i);
void append_utf8(std::string& out, std::uint32_t cp);
bool valid_utf8(std::string_view s);
// Byte offset of every code point of s, then s.size().
std::vector<std::size_t> code_point_offsets(std::string_view s);
std::size_t code_point_count(std::string_view s);
// Python's escape of a code point in repr(): \xhh, \uhhhh or \Uhhhhhhhh.
std::string backslash_escape(std::uint32_t cp);
// Python's str.isspace() for one code point.
bool is_space(std::uint32_t cp);
// Python's str.strip()/lstrip()/rstrip(): whitespace, or the code points of
// `chars` when given.
std::string_view strip(std::string_view s, bool left, bool right, const std::string* chars = nullptr);

// ---- syntax tree ------------------------------------------------------------

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;
using FilterFn = Value (*)(Interpreter&, const Value&, CallArgs&, int line);
using TestFn = bool (*)(Interpreter&, const Value&, CallArgs&, int line);

struct Expr {
  enum class Kind {
    Const, Name, List, Tuple, Dict, Attr, Item, Slice, Call, Filter, Test,
    Neg, Pos, Not, Binary, Compare, And, Or, Cond
  };
  Kind kind;
  int line;
  Value value;                // Const
  std::string name;           // Name, Attr, Filter, Test; the operator of Binary
  // Operands. Attr/Item/Slice/Call/Filter/Test: the subject first. Slice:
  // subject, start, stop, step. Dict: key, value, key, value... Cond: then,
  // condition, else. Compare: the first operand, then one per operator. A
  // missing optional part is a null pointer.
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;  // Call/Filter/Test
  std::vector<std::string> ops;                         // Compare
  FilterFn filter = nullptr;
  TestFn test = nullptr;
  bool negate = false;  // Test: "is not"
  int depth = 1;        // of the subtree: parsing bounds it, so evaluation's recursion is bounded
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

struct Stmt {
  enum class Kind { Text, Output, If, For, Set, SetBlock, Macro, Break, Continue, Scope };
  Kind kind;
  int line;
  std::string text;                  // Text: the data; Set/SetBlock/Macro: the name
  std::string attr;                  // Set: the attribute of `set ns.attr = ...`
  std::vector<std::string> targets;  // For: loop variables; Set: names of a tuple assignment
  ExprPtr expr;                      // Output, Set: the value; For: the iterable
  ExprPtr cond;                      // For: the `if` filter
  std::vector<std::pair<ExprPtr, Body>> branches;  // If: (condition, body); a null condition is else
  Body body, else_body;                            // For, SetBlock, Macro, Scope (generation)
  std::vector<std::pair<std::string, ExprPtr>> params;  // Macro: parameters and defaults
};

struct Program {
  Body body;
};

// Parses a template; FormatError(source, "line N: ...") when it cannot.
std::shared_ptr<const Program> parse_template(std::string_view text, const std::string& source);

// ---- builtins (jinja_builtins.cpp) -------------------------------------------

// nullptr for a filter or test outside the subset.
FilterFn find_filter(std::string_view name);
TestFn find_test(std::string_view name);
// The bound method `name` of a string or dict (`s.strip`, `d.items`), or an
// undefined value when there is none.
Value find_method(const Value& self, const std::string& name);
// range, namespace, dict, raise_exception, strftime_now.
std::vector<Value::Entry> global_functions();

// ---- interpreter (jinja_eval.cpp) --------------------------------------------

class Interpreter {
 public:
  Interpreter(const std::string& source, const RenderSettings& settings);
  std::string run(const Program& program, const std::vector<Value::Entry>& variables);

  // What builtins need.
  [[noreturn]] void fail(int line, const std::string& message) const;
  void charge(std::int64_t steps, int line);
  void check_size(std::size_t size, int line) const;  // a string's bytes or a list's items
  Value make_list(std::vector<Value> items, int line, bool tuple = false);
  Value make_dict(std::vector<Value::Entry> entries, int line);
  Value getattr(const Value& obj, const std::string& name, int line);
  Value call(const Value& callee, CallArgs& args, int line);
  Value call_macro(const Stmt& macro, CallArgs& args, int line);
  // Python's iter(): a list's items, a dict's keys, a string's characters;
  // nothing for an undefined value.
  std::vector<Value> iterate(const Value& v, int line);
  // Python's ==, !=, <, <=, >, >=, in, not in.
  bool compare(const std::string& op, const Value& a, const Value& b, int line);
  std::time_t now() const;
  const std::string& source() const { return source_; }
  const Limits& limits() const { return settings_.limits; }

 private:
  enum class Flow { Normal, Break, Continue };
  Flow exec(const Body& body, std::string& out);
  Flow exec(const Stmt& s, std::string& out);
  void exec_for(const Stmt& s, std::string& out);
  void bind(const std::vector<std::string>& targets, const Value& item, int line);
  Value eval(const Expr& e);
  Value eval_binary(const std::string& op, const Value& a, const Value& b, int line);
  Value subscript(const Value& obj, const Value& key, int line);
  Value slice(const Value& obj, const Expr& e);
  CallArgs eval_args(const Expr& e, std::size_t first);
  Value lookup(const std::string& name) const;
  void assign(const std::string& name, Value v);
  void append(std::string& out, std::string_view text, int line) const;

  const std::string& source_;
  const RenderSettings& settings_;
  std::int64_t steps_ = 0;
  int call_depth_ = 0;
  std::vector<std::vector<Value::Entry>> scopes_;  // [0] globals, [1] the template's variables
};

}  // namespace lwb::data::jinja
