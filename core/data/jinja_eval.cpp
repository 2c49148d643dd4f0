// The Jinja interpreter: statements, expressions and Python's operators, with
// every step, string and list counted against the render's limits.
#include <algorithm>
#include <cmath>

#include "core/common/errors.h"
#include "core/data/jinja_internal.h"

namespace lwb::data::jinja {

namespace {

// Lists and dicts nest no deeper, so recursion over a value stays shallow.
constexpr int kMaxValueDepth = 256;

// What the template did to get an undefined value, for the error when it is used.
std::string undefined_message(const Value& v) {
  return v.text().empty() ? "undefined value" : v.text();
}

bool is_int(const Value& v) { return v.kind() == Value::Kind::Int || v.kind() == Value::Kind::Bool; }
std::int64_t int_of(const Value& v) { return v.kind() == Value::Kind::Bool ? v.boolean() : v.integer(); }
double real_of(const Value& v) { return v.kind() == Value::Kind::Float ? v.real() : static_cast<double>(int_of(v)); }

// A namespace holding a namespace (or a function, which may hold one) could
// form a cycle; chat templates never need it.
bool holds_namespace_or_function(const Value& v) {
  using K = Value::Kind;
  switch (v.kind()) {
    case K::Namespace:
    case K::Function: return true;
    case K::List:
      return std::any_of(v.items().begin(), v.items().end(), holds_namespace_or_function);
    case K::Dict:
      return std::any_of(v.entries().begin(), v.entries().end(),
                         [](const Value::Entry& e) { return holds_namespace_or_function(e.second); });
    default: return false;
  }
}

// Python's slice index adjustment, with the indices clamped first so that
// nothing overflows.
std::vector<std::size_t> slice_indices(std::int64_t len, std::optional<std::int64_t> start,
                                       std::optional<std::int64_t> stop, std::int64_t step) {
  const auto adjust = [&](std::optional<std::int64_t> v, std::int64_t dflt) {
    if (!v) return dflt;
    std::int64_t x = std::clamp<std::int64_t>(*v, -len - 1, len + 1);
    if (x < 0) {
      x += len;
      if (x < 0) x = step < 0 ? -1 : 0;
    } else if (x >= len) {
      x = step < 0 ? len - 1 : len;
    }
    return x;
  };
  const std::int64_t a = adjust(start, step < 0 ? len - 1 : 0);
  const std::int64_t b = adjust(stop, step < 0 ? -1 : len);
  std::vector<std::size_t> out;
  for (std::int64_t i = a; step > 0 ? i < b : i > b; i += step) out.push_back(static_cast<std::size_t>(i));
  return out;
}

}  // namespace

Interpreter::Interpreter(const std::string& source, const RenderSettings& settings)
    : source_(source), settings_(settings) {}

std::string Interpreter::run(const Program& program, const std::vector<Value::Entry>& variables) {
  scopes_.clear();
  scopes_.push_back(global_functions());
  scopes_.push_back(variables);
  std::string out;
  exec(program.body, out);
  return out;
}

void Interpreter::fail(int line, const std::string& message) const {
  throw FormatError(source_, "line " + std::to_string(line) + ": " + message);
}

void Interpreter::charge(std::int64_t steps, int line) {
  steps_ += steps;
  if (steps_ > settings_.limits.max_steps)
    fail(line, "rendering took more than " + std::to_string(settings_.limits.max_steps) + " steps");
}

void Interpreter::check_size(std::size_t size, int line) const {
  if (size > settings_.limits.max_bytes)
    fail(line, "a value or the output grew past " + std::to_string(settings_.limits.max_bytes) + " bytes");
}

Value Interpreter::make_list(std::vector<Value> items, int line, bool tuple) {
  Value v = Value::list(std::move(items), tuple);
  if (v.depth() > kMaxValueDepth) fail(line, "lists nested deeper than " + std::to_string(kMaxValueDepth) + " levels");
  check_size(v.footprint(), line);
  return v;
}

Value Interpreter::make_dict(std::vector<Value::Entry> entries, int line) {
  Value v = Value::dict(std::move(entries));
  if (v.depth() > kMaxValueDepth) fail(line, "dicts nested deeper than " + std::to_string(kMaxValueDepth) + " levels");
  check_size(v.footprint(), line);
  return v;
}

std::time_t Interpreter::now() const { return settings_.now ? *settings_.now : std::time(nullptr); }

void Interpreter::append(std::string& out, std::string_view text, int line) const {
  check_size(out.size() + text.size(), line);
  out += text;
}

// ---- names ------------------------------------------------------------------------

Value Interpreter::lookup(const std::string& name) const {
  for (auto s = scopes_.rbegin(); s != scopes_.rend(); ++s)
    if (const Value* v = find_entry(*s, name)) return *v;
  return Value::undefined("'" + name + "' is undefined");
}

void Interpreter::assign(const std::string& name, Value v) { set_entry(scopes_.back(), name, std::move(v)); }

// ---- statements -------------------------------------------------------------------

Interpreter::Flow Interpreter::exec(const Body& body, std::string& out) {
  for (const auto& s : body) {
    const Flow f = exec(*s, out);
    if (f != Flow::Normal) return f;
  }
  return Flow::Normal;
}

Interpreter::Flow Interpreter::exec(const Stmt& s, std::string& out) {
  charge(1, s.line);
  switch (s.kind) {
    case Stmt::Kind::Text: append(out, s.text, s.line); break;
    case Stmt::Kind::Output: {
      const Value v = eval(*s.expr);
      charge(static_cast<std::int64_t>(v.footprint() / 64), s.line);
      append(out, to_str(v), s.line);
      break;
    }
    case Stmt::Kind::If:
      for (const auto& [cond, body] : s.branches)
        if (!cond || eval(*cond).truthy()) return exec(body, out);
      break;
    case Stmt::Kind::For: exec_for(s, out); break;
    case Stmt::Kind::Set: {
      Value v = eval(*s.expr);
      if (!s.attr.empty()) {
        const Value ns = lookup(s.text);
        if (ns.kind() != Value::Kind::Namespace) fail(s.line, "cannot set an attribute of '" + s.text + "': not a namespace");
        if (holds_namespace_or_function(v)) fail(s.line, "unsupported: a namespace or function stored in a namespace");
        set_entry(static_cast<NamespaceObject&>(*ns.object()).attrs, s.attr, std::move(v));
        check_size(ns.footprint(), s.line);
      } else if (!s.targets.empty()) {
        const std::vector<Value> parts = iterate(v, s.line);
        if (parts.size() != s.targets.size())
          fail(s.line, "cannot unpack " + std::to_string(parts.size()) + " values into " +
                           std::to_string(s.targets.size()) + " names");
        for (std::size_t i = 0; i < parts.size(); ++i) assign(s.targets[i], parts[i]);
      } else {
        assign(s.text, std::move(v));
      }
      break;
    }
    case Stmt::Kind::SetBlock: {
      std::string text;
      exec(s.body, text);
      assign(s.text, Value(std::move(text)));
      break;
    }
    case Stmt::Kind::Macro: {
      const Stmt* macro = &s;
      assign(s.text, make_function(s.text, [macro](Interpreter& in, CallArgs& args, int line) {
               return in.call_macro(*macro, args, line);
             }));
      break;
    }
    case Stmt::Kind::Break: return Flow::Break;
    case Stmt::Kind::Continue: return Flow::Continue;
    case Stmt::Kind::Scope: return exec(s.body, out);
  }
  return Flow::Normal;
}

std::vector<Value> Interpreter::iterate(const Value& v, int line) {
  using K = Value::Kind;
  switch (v.kind()) {
    case K::Undefined: return {};
    case K::List: charge(static_cast<std::int64_t>(v.items().size()), line); return v.items();
    case K::Dict: {
      std::vector<Value> keys;
      for (const auto& [k, x] : v.entries()) keys.emplace_back(k);
      charge(static_cast<std::int64_t>(keys.size()), line);
      return keys;
    }
    case K::String: {
      std::vector<Value> chars;
      const auto offsets = code_point_offsets(v.text());
      check_size(offsets.size() * 24, line);
      charge(static_cast<std::int64_t>(offsets.size()), line);
      for (std::size_t i = 0; i + 1 < offsets.size(); ++i)
        chars.emplace_back(v.text().substr(offsets[i], offsets[i + 1] - offsets[i]));
      return chars;
    }
    default: fail(line, std::string("'") + type_name(v) + "' object is not iterable");
  }
}

void Interpreter::bind(const std::vector<std::string>& targets, const Value& item, int line) {
  if (targets.size() == 1) {
    assign(targets[0], item);
    return;
  }
  const std::vector<Value> parts = iterate(item, line);
  if (parts.size() != targets.size())
    fail(line, "cannot unpack " + std::to_string(parts.size()) + " values into " + std::to_string(targets.size()) +
                   " loop variables");
  for (std::size_t i = 0; i < parts.size(); ++i) assign(targets[i], parts[i]);
}

void Interpreter::exec_for(const Stmt& s, std::string& out) {
  std::vector<Value> items = iterate(eval(*s.expr), s.line);
  scopes_.emplace_back();
  if (s.cond) {
    std::vector<Value> kept;
    for (Value& item : items) {
      bind(s.targets, item, s.line);
      if (eval(*s.cond).truthy()) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  const auto n = static_cast<std::int64_t>(items.size());
  for (std::int64_t i = 0; i < n; ++i) {
    charge(1, s.line);
    bind(s.targets, items[static_cast<std::size_t>(i)], s.line);
    // jinja2's loop object, as a dict (loop.cycle is a function of the index).
    std::vector<Value::Entry> loop = {
        {"index", i + 1},
        {"index0", i},
        {"revindex", n - i},
        {"revindex0", n - i - 1},
        {"first", i == 0},
        {"last", i == n - 1},
        {"length", n},
        {"depth", 1},
        {"depth0", 0},
        {"previtem", i > 0 ? items[static_cast<std::size_t>(i - 1)] : Value::undefined("there is no previous item")},
        {"nextitem", i + 1 < n ? items[static_cast<std::size_t>(i + 1)] : Value::undefined("there is no next item")},
        {"cycle", make_function("loop.cycle", [i](Interpreter& in, CallArgs& args, int line) {
           if (args.positional.empty()) in.fail(line, "loop.cycle() needs at least one argument");
           return args.positional[static_cast<std::size_t>(i) % args.positional.size()];
         })},
    };
    assign("loop", Value::dict(std::move(loop)));
    if (exec(s.body, out) == Flow::Break) break;
  }
  scopes_.pop_back();
  if (items.empty()) exec(s.else_body, out);
}

Value Interpreter::call_macro(const Stmt& macro, CallArgs& args, int line) {
  if (args.positional.size() > macro.params.size())
    fail(line, "macro '" + macro.text + "' takes at most " + std::to_string(macro.params.size()) + " arguments");
  for (const Value::Entry& arg : args.named)
    if (std::none_of(macro.params.begin(), macro.params.end(), [&](const auto& p) { return p.first == arg.first; }))
      fail(line, "macro '" + macro.text + "' has no parameter '" + arg.first + "'");
  if (++call_depth_ > settings_.limits.max_call_depth)
    fail(line, "macro calls nested deeper than " + std::to_string(settings_.limits.max_call_depth));
  // A macro sees the globals, the template's top level and its parameters.
  std::vector<std::vector<Value::Entry>> saved(std::make_move_iterator(scopes_.begin() + 2),
                                               std::make_move_iterator(scopes_.end()));
  scopes_.resize(2);
  scopes_.emplace_back();
  for (std::size_t i = 0; i < macro.params.size(); ++i) {
    const auto& [name, dflt] = macro.params[i];
    const Value* named = find_entry(args.named, name);
    if (i < args.positional.size()) {
      assign(name, args.positional[i]);
    } else if (named) {
      assign(name, *named);
    } else {
      assign(name, dflt ? eval(*dflt) : Value::undefined("parameter '" + name + "' was not passed"));
    }
  }
  std::string out;
  exec(macro.body, out);
  scopes_.resize(2);
  for (auto& s : saved) scopes_.push_back(std::move(s));
  --call_depth_;
  return Value(std::move(out));
}

// ---- expressions ------------------------------------------------------------------

CallArgs Interpreter::eval_args(const Expr& e, std::size_t first) {
  CallArgs a;
  for (std::size_t i = first; i < e.args.size(); ++i) a.positional.push_back(eval(*e.args[i]));
  for (const auto& [k, x] : e.kwargs) a.named.emplace_back(k, eval(*x));
  return a;
}

Value Interpreter::eval(const Expr& e) {
  charge(1, e.line);
  using K = Expr::Kind;
  switch (e.kind) {
    case K::Const: return e.value;
    case K::Name: return lookup(e.name);
    case K::List:
    case K::Tuple: {
      std::vector<Value> items;
      for (const auto& a : e.args) items.push_back(eval(*a));
      return make_list(std::move(items), e.line, e.kind == K::Tuple);
    }
    case K::Dict: {
      std::vector<Value::Entry> entries;
      for (std::size_t i = 0; i + 1 < e.args.size(); i += 2) {
        const Value key = eval(*e.args[i]);
        if (!key.is_string()) fail(e.line, std::string("unsupported dict key of type '") + type_name(key) + "'");
        set_entry(entries, key.text(), eval(*e.args[i + 1]));
      }
      return make_dict(std::move(entries), e.line);
    }
    case K::Attr: return getattr(eval(*e.args[0]), e.name, e.line);
    case K::Item: return subscript(eval(*e.args[0]), eval(*e.args[1]), e.line);
    case K::Slice: return slice(eval(*e.args[0]), e);
    case K::Call: {
      const Value callee = eval(*e.args[0]);
      CallArgs args = eval_args(e, 1);
      return call(callee, args, e.line);
    }
    case K::Filter: {
      const Value subject = eval(*e.args[0]);
      CallArgs args = eval_args(e, 1);
      return e.filter(*this, subject, args, e.line);
    }
    case K::Test: {
      const Value subject = eval(*e.args[0]);
      CallArgs args = eval_args(e, 1);
      return e.test(*this, subject, args, e.line) != e.negate;
    }
    case K::Neg:
    case K::Pos: {
      const Value v = eval(*e.args[0]);
      if (v.is_undefined()) fail(e.line, undefined_message(v));
      if (!v.is_number()) fail(e.line, std::string("bad operand type for unary ") + (e.kind == K::Neg ? "-" : "+") +
                                           ": '" + type_name(v) + "'");
      if (e.kind == K::Pos) return v.kind() == Value::Kind::Bool ? Value(int_of(v)) : v;
      if (v.kind() == Value::Kind::Float) return Value(-v.real());
      if (int_of(v) == INT64_MIN) fail(e.line, "integer overflow");
      return Value(-int_of(v));
    }
    case K::Not: return !eval(*e.args[0]).truthy();
    case K::And: {
      Value a = eval(*e.args[0]);
      return a.truthy() ? eval(*e.args[1]) : a;
    }
    case K::Or: {
      Value a = eval(*e.args[0]);
      return a.truthy() ? a : eval(*e.args[1]);
    }
    case K::Binary: return eval_binary(e.name, eval(*e.args[0]), eval(*e.args[1]), e.line);
    case K::Compare: {
      Value left = eval(*e.args[0]);
      for (std::size_t i = 0; i < e.ops.size(); ++i) {
        Value right = eval(*e.args[i + 1]);
        if (!compare(e.ops[i], left, right, e.line)) return false;
        left = std::move(right);
      }
      return true;
    }
    case K::Cond:
      if (eval(*e.args[1]).truthy()) return eval(*e.args[0]);
      return e.args[2] ? eval(*e.args[2]) : Value::undefined("the condition was false and there is no else");
  }
  return {};
}

Value Interpreter::getattr(const Value& obj, const std::string& name, int line) {
  using K = Value::Kind;
  switch (obj.kind()) {
    case K::Undefined: fail(line, undefined_message(obj) + " (reading '." + name + "')");
    case K::Dict: {
      Value m = find_method(obj, name);
      if (!m.is_undefined()) return m;
      if (const Value* v = obj.find(name)) return *v;
      break;
    }
    case K::String:
    case K::List: {
      Value m = find_method(obj, name);
      if (!m.is_undefined()) return m;
      break;
    }
    case K::Namespace:
      if (const Value* v = find_entry(static_cast<const NamespaceObject&>(*obj.object()).attrs, name)) return *v;
      break;
    default: break;
  }
  return Value::undefined(std::string("'") + type_name(obj) + " object' has no attribute '" + name + "'");
}

Value Interpreter::subscript(const Value& obj, const Value& key, int line) {
  using K = Value::Kind;
  if (obj.is_undefined()) fail(line, undefined_message(obj) + " (reading [" + to_repr(key) + "])");
  const auto missing = [&] {
    return Value::undefined(std::string("'") + type_name(obj) + " object' has no element " + to_repr(key));
  };
  if ((obj.is_list() || obj.is_string()) && is_int(key)) {
    const bool is_list = obj.is_list();
    const std::int64_t n = is_list ? static_cast<std::int64_t>(obj.items().size())
                                   : static_cast<std::int64_t>(code_point_count(obj.text()));
    std::int64_t i = int_of(key);
    if (i < 0) i += n;
    if (i < 0 || i >= n) return missing();
    if (is_list) return obj.items()[static_cast<std::size_t>(i)];
    const auto offsets = code_point_offsets(obj.text());
    const auto k = static_cast<std::size_t>(i);
    return Value(obj.text().substr(offsets[k], offsets[k + 1] - offsets[k]));
  }
  if (obj.is_dict() && key.is_string())
    if (const Value* v = obj.find(key.text())) return *v;
  if (key.is_string() && (obj.is_dict() || obj.is_string() || obj.is_list() || obj.kind() == K::Namespace))
    return getattr(obj, key.text(), line);
  return missing();
}

Value Interpreter::slice(const Value& obj, const Expr& e) {
  if (obj.is_undefined()) fail(e.line, undefined_message(obj) + " (slicing)");
  std::optional<std::int64_t> bound[3];
  for (int k = 0; k < 3; ++k) {
    if (!e.args[static_cast<std::size_t>(k) + 1]) continue;
    const Value v = eval(*e.args[static_cast<std::size_t>(k) + 1]);
    if (v.is_none()) continue;
    if (!is_int(v)) return Value::undefined("slice indices must be integers");
    bound[k] = int_of(v);
  }
  const std::int64_t step = bound[2].value_or(1);
  if (step == 0) fail(e.line, "slice step cannot be zero");
  if (obj.is_list()) {
    const auto& items = obj.items();
    std::vector<Value> out;
    for (std::size_t i : slice_indices(static_cast<std::int64_t>(items.size()), bound[0], bound[1], step))
      out.push_back(items[i]);
    charge(static_cast<std::int64_t>(out.size()), e.line);
    return make_list(std::move(out), e.line, obj.is_tuple());
  }
  if (obj.is_string()) {
    const auto offsets = code_point_offsets(obj.text());
    std::string out;
    for (std::size_t i : slice_indices(static_cast<std::int64_t>(offsets.size()) - 1, bound[0], bound[1], step))
      out.append(obj.text(), offsets[i], offsets[i + 1] - offsets[i]);
    charge(static_cast<std::int64_t>(offsets.size() / 64), e.line);
    return Value(std::move(out));
  }
  return Value::undefined(std::string("'") + type_name(obj) + " object' cannot be sliced");
}

Value Interpreter::call(const Value& callee, CallArgs& args, int line) {
  if (callee.is_undefined()) fail(line, undefined_message(callee) + " (called as a function)");
  if (callee.kind() != Value::Kind::Function) fail(line, std::string("'") + type_name(callee) + "' object is not callable");
  return static_cast<const FunctionObject&>(*callee.object()).call(*this, args, line);
}

// ---- operators ----------------------------------------------------------------------

Value Interpreter::eval_binary(const std::string& op, const Value& a, const Value& b, int line) {
  if (op == "~") {
    std::string s = to_str(a);
    const std::string t = to_str(b);
    check_size(s.size() + t.size(), line);
    charge(static_cast<std::int64_t>((s.size() + t.size()) / 64), line);
    return Value(s + t);
  }
  for (const Value* v : {&a, &b})
    if (v->is_undefined()) fail(line, undefined_message(*v));
  const auto unsupported = [&]() -> Value {
    fail(line, "unsupported operand types for " + op + ": '" + type_name(a) + "' and '" + type_name(b) + "'");
  };
  if (op == "+") {
    if (a.is_string() && b.is_string()) {
      check_size(a.text().size() + b.text().size(), line);
      charge(static_cast<std::int64_t>((a.text().size() + b.text().size()) / 64), line);
      return Value(a.text() + b.text());
    }
    if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
      check_size(a.footprint() + b.footprint(), line);
      std::vector<Value> items = a.items();
      items.insert(items.end(), b.items().begin(), b.items().end());
      charge(static_cast<std::int64_t>(items.size()), line);
      return make_list(std::move(items), line, a.is_tuple());
    }
  }
  if (op == "*" && (is_int(a) != is_int(b)) && (a.is_string() || a.is_list() || b.is_string() || b.is_list())) {
    const Value& seq = is_int(a) ? b : a;
    const std::int64_t n = std::max<std::int64_t>(0, int_of(is_int(a) ? a : b));
    const std::size_t unit = seq.is_string() ? seq.text().size() : seq.footprint();
    if (unit == 0) return seq;
    check_size(static_cast<std::size_t>(n) > settings_.limits.max_bytes / unit ? SIZE_MAX : unit * static_cast<std::size_t>(n),
               line);
    charge(static_cast<std::int64_t>(unit * static_cast<std::size_t>(n) / 64) + 1, line);
    if (seq.is_string()) {
      std::string s;
      for (std::int64_t i = 0; i < n; ++i) s += seq.text();
      return Value(std::move(s));
    }
    std::vector<Value> items;
    for (std::int64_t i = 0; i < n; ++i) items.insert(items.end(), seq.items().begin(), seq.items().end());
    return make_list(std::move(items), line, seq.is_tuple());
  }
  if (op == "%" && a.is_string()) fail(line, "unsupported: %-formatting of strings");
  if (!a.is_number() || !b.is_number()) return unsupported();
  const bool ints = is_int(a) && is_int(b);
  if (ints) {
    const std::int64_t x = int_of(a), y = int_of(b);
    std::int64_t r = 0;
    const auto overflow = [&] { fail(line, "integer overflow"); };
    if (op == "+") {
      if (__builtin_add_overflow(x, y, &r)) overflow();
      return r;
    }
    if (op == "-") {
      if (__builtin_sub_overflow(x, y, &r)) overflow();
      return r;
    }
    if (op == "*") {
      if (__builtin_mul_overflow(x, y, &r)) overflow();
      return r;
    }
    if (op == "//" || op == "%") {
      if (y == 0) fail(line, "integer division or modulo by zero");
      if (x == INT64_MIN && y == -1) overflow();
      std::int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {
        --q;
        m += y;
      }
      return op == "//" ? q : m;
    }
    if (op == "**" && y >= 0) {
      std::int64_t base = x, e = y;
      r = 1;
      while (e > 0) {
        if ((e & 1) && __builtin_mul_overflow(r, base, &r)) overflow();
        e >>= 1;
        if (e > 0 && __builtin_mul_overflow(base, base, &base)) overflow();
      }
      return r;
    }
  }
  const double x = real_of(a), y = real_of(b);
  if (op == "+") return x + y;
  if (op == "-") return x - y;
  if (op == "*") return x * y;
  if (op == "/") {
    if (y == 0) fail(line, "division by zero");
    return x / y;
  }
  if (op == "//" || op == "%") {
    // Python's float divmod.
    if (y == 0) fail(line, "float division or modulo by zero");
    double m = std::fmod(x, y);
    double div = (x - m) / y;
    if (m != 0 && ((y < 0) != (m < 0))) {
      m += y;
      div -= 1.0;
    }
    if (op == "%") return m != 0 ? m : std::copysign(0.0, y);
    if (div == 0) return std::copysign(0.0, x / y);
    double floor_div = std::floor(div);
    if (div - floor_div > 0.5) floor_div += 1.0;
    return floor_div;
  }
  if (op == "**") {
    if (x == 0 && y < 0) fail(line, "zero to a negative power");
    if (x < 0 && std::trunc(y) != y) fail(line, "unsupported: a negative number to a fractional power");
    return std::pow(x, y);
  }
  return unsupported();
}

bool Interpreter::compare(const std::string& op, const Value& a, const Value& b, int line) {
  if (op == "==") return a == b;
  if (op == "!=") return !(a == b);
  if (op == "in" || op == "not in") {
    bool found = false;
    if (b.is_string()) {
      if (!a.is_string()) fail(line, std::string("'in <string>' requires a string on the left, not '") + type_name(a) + "'");
      charge(static_cast<std::int64_t>(b.text().size() / 64), line);
      found = b.text().find(a.text()) != std::string::npos;
    } else if (b.is_dict()) {
      found = a.is_string() && b.find(a.text()) != nullptr;
    } else if (b.is_list()) {
      charge(static_cast<std::int64_t>(b.items().size()), line);
      found = std::any_of(b.items().begin(), b.items().end(), [&](const Value& x) { return x == a; });
    } else if (!b.is_undefined()) {
      fail(line, std::string("argument of type '") + type_name(b) + "' is not iterable");
    }
    return found != (op == "not in");
  }
  for (const Value* v : {&a, &b})
    if (v->is_undefined()) fail(line, undefined_message(*v));
  int c = 0;  // sign of a - b
  if (a.is_number() && b.is_number()) {
    if (is_int(a) && is_int(b)) {
      c = int_of(a) < int_of(b) ? -1 : int_of(a) > int_of(b) ? 1 : 0;
    } else {
      const double x = real_of(a), y = real_of(b);
      if (std::isnan(x) || std::isnan(y)) return false;
      c = x < y ? -1 : x > y ? 1 : 0;
    }
  } else if (a.is_string() && b.is_string()) {
    c = a.text().compare(b.text());
    c = c < 0 ? -1 : c > 0 ? 1 : 0;
  } else if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    const auto& x = a.items();
    const auto& y = b.items();
    std::size_t i = 0;
    while (i < x.size() && i < y.size() && x[i] == y[i]) ++i;
    charge(static_cast<std::int64_t>(i), line);
    if (i < x.size() && i < y.size()) return compare(op, x[i], y[i], line);
    c = x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  } else {
    fail(line, "'" + op + "' not supported between '" + type_name(a) + "' and '" + type_name(b) + "'");
  }
  if (op == "<") return c < 0;
  if (op == "<=") return c <= 0;
  if (op == ">") return c > 0;
  return c >= 0;
}

// ---- Template -------------------------------------------------------------------------

Template::Template(std::string_view text, std::string source)
    : program_(parse_template(text, source)), source_(std::move(source)) {}

std::string Template::render(const std::vector<Value::Entry>& variables, const RenderSettings& settings) const {
  Interpreter in(source_, settings);
  return in.run(*program_, variables);
}

}  // namespace lwb::data::jinja
