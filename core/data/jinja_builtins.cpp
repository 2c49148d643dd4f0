// Jinja's filters and tests, Python's string and dict methods, and the
// globals transformers gives chat templates — those the real templates use,
// with jinja2's and Python's semantics. Letter case is changed for ASCII only.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iomanip>
#include <locale>
#include <sstream>
#include <stdexcept>

#include "core/common/errors.h"
#include "core/data/jinja_internal.h"

namespace lwb::data::jinja {

namespace {

// ---- arguments ----------------------------------------------------------------

// A parameter by position or name; `dflt` when neither was passed.
Value param(const CallArgs& a, std::size_t pos, std::string_view name, Value dflt = Value()) {
  if (pos < a.positional.size()) return a.positional[pos];
  if (const Value* v = find_entry(a.named, name)) return *v;
  return dflt;
}

// Refuses arguments beyond `names` (positional ones count in order).
void check_args(Interpreter& in, const CallArgs& a, std::initializer_list<std::string_view> names, const char* fn,
                int line) {
  if (a.positional.size() > names.size())
    in.fail(line, std::string(fn) + "() takes at most " + std::to_string(names.size()) + " arguments");
  for (const auto& [k, v] : a.named)
    if (std::find(names.begin(), names.end(), k) == names.end())
      in.fail(line, std::string(fn) + "() got an unexpected argument '" + k + "'");
}

std::int64_t int_param(Interpreter& in, const Value& v, const char* what, int line) {
  if (v.kind() == Value::Kind::Bool) return v.boolean();
  if (v.kind() != Value::Kind::Int) in.fail(line, std::string(what) + " must be an integer");
  return v.integer();
}

const std::string& str_param(Interpreter& in, const Value& v, const char* what, int line) {
  if (!v.is_string()) in.fail(line, std::string(what) + " must be a string");
  return v.text();
}

// ---- strings ----------------------------------------------------------------------

char ascii_upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c; }
char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }
bool ascii_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), ascii_upper);
  return s;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), ascii_lower);
  return s;
}

std::string capitalize(std::string s) {
  s = lower(std::move(s));
  if (!s.empty()) s[0] = ascii_upper(s[0]);
  return s;
}

// Python's str.title(): a letter after a letter is lowered, others raised.
std::string py_title(std::string s) {
  bool prev = false;
  for (char& c : s) {
    const bool cased = ascii_alpha(c);
    c = prev ? ascii_lower(c) : ascii_upper(c);
    prev = cased;
  }
  return s;
}

// jinja2's title filter: words begin after "-", whitespace or an opening bracket.
std::string jinja_title(const std::string& s) {
  std::string out;
  bool word_start = true;
  for (char c : s) {
    const bool sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || c == ' ' || (c >= '\t' && c <= '\r');
    out += sep ? c : word_start ? ascii_upper(c) : ascii_lower(c);
    word_start = sep;
  }
  return out;
}

std::string replace(Interpreter& in, const std::string& s, const std::string& from, const std::string& to,
                    std::int64_t count, int line) {
  // Size the result first: the output must not be built past the limit.
  std::int64_t n = 0;
  if (from.empty()) {
    n = static_cast<std::int64_t>(code_point_count(s)) + 1;
  } else {
    for (std::size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + from.size())) ++n;
  }
  if (count >= 0) n = std::min(n, count);
  const std::size_t size = s.size() + static_cast<std::size_t>(n) * to.size();
  in.check_size(size, line);
  in.charge(static_cast<std::int64_t>(size / 64), line);
  std::string out;
  std::size_t pos = 0;
  for (std::int64_t k = 0; k < n; ++k) {
    if (from.empty()) {
      out += to;
      if (pos < s.size()) {
        std::size_t next = pos;
        decode_utf8(s, next);
        out.append(s, pos, next - pos);
        pos = next;
      }
      continue;
    }
    const std::size_t p = s.find(from, pos);
    out.append(s, pos, p - pos);
    out += to;
    pos = p + from.size();
  }
  if (pos < s.size()) out.append(s, pos);
  return out;
}

// Python's str.split(sep=None, maxsplit=-1).
Value split(Interpreter& in, const std::string& s, const Value& sep, std::int64_t maxsplit, int line) {
  std::vector<Value> parts;
  std::size_t footprint = 0;
  const auto add = [&](std::string part) {
    footprint += part.size() + 16;
    in.check_size(footprint, line);
    parts.emplace_back(std::move(part));
  };
  if (sep.is_none() || sep.is_undefined()) {
    std::size_t i = 0;
    const auto skip_space = [&] {
      while (i < s.size()) {
        std::size_t j = i;
        if (!is_space(decode_utf8(s, j))) break;
        i = j;
      }
    };
    skip_space();
    while (i < s.size()) {
      if (maxsplit >= 0 && static_cast<std::int64_t>(parts.size()) == maxsplit) {
        add(std::string(strip(std::string_view(s).substr(i), false, true)));
        break;
      }
      const std::size_t start = i;
      while (i < s.size()) {
        std::size_t j = i;
        if (is_space(decode_utf8(s, j))) break;
        i = j;
      }
      add(s.substr(start, i - start));
      skip_space();
    }
  } else {
    const std::string& d = str_param(in, sep, "split()'s separator", line);
    if (d.empty()) in.fail(line, "empty separator");
    std::size_t pos = 0;
    for (std::size_t p = s.find(d); p != std::string::npos && (maxsplit < 0 || static_cast<std::int64_t>(parts.size()) < maxsplit);
         p = s.find(d, pos)) {
      add(s.substr(pos, p - pos));
      pos = p + d.size();
    }
    add(s.substr(pos));
  }
  in.charge(static_cast<std::int64_t>(parts.size()), line);
  return in.make_list(std::move(parts), line);
}

std::string join(Interpreter& in, const std::vector<Value>& items, const std::string& sep, int line) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string s = to_str(items[i]);
    in.check_size(out.size() + sep.size() + s.size(), line);
    if (i) out += sep;
    out += s;
  }
  in.charge(static_cast<std::int64_t>(items.size() + out.size() / 64), line);
  return out;
}

// Python's float(str), which ignores surrounding whitespace and "_" between digits.
std::optional<double> parse_float(const std::string& s) {
  std::string t(strip(s, true, true));
  t.erase(std::remove(t.begin(), t.end(), '_'), t.end());
  if (t.empty()) return std::nullopt;
  char* end = nullptr;
  const double d = std::strtod(t.c_str(), &end);
  if (end != t.c_str() + t.size()) return std::nullopt;
  return d;
}

std::optional<std::int64_t> parse_int(const std::string& s, int base) {
  std::string t(strip(s, true, true));
  t.erase(std::remove(t.begin(), t.end(), '_'), t.end());
  if (t.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(t.c_str(), &end, base);
  if (end != t.c_str() + t.size() || errno == ERANGE) return std::nullopt;
  return v;
}

// ---- filters ------------------------------------------------------------------------

std::size_t length(Interpreter& in, const Value& v, int line) {
  using K = Value::Kind;
  switch (v.kind()) {
    case K::Undefined: return 0;
    case K::String: return code_point_count(v.text());
    case K::List: return v.items().size();
    case K::Dict: return v.entries().size();
    default: in.fail(line, std::string("object of type '") + type_name(v) + "' has no len()");
  }
}

Value f_abs(Interpreter& in, const Value& v, CallArgs& a, int line) {
  check_args(in, a, {}, "abs", line);
  if (v.kind() == Value::Kind::Float) return std::fabs(v.real());
  const std::int64_t i = int_param(in, v, "abs()'s argument", line);
  if (i == INT64_MIN) in.fail(line, "integer overflow");
  return i < 0 ? -i : i;
}

Value f_capitalize(Interpreter& in, const Value& v, CallArgs& a, int line) {
  check_args(in, a, {}, "capitalize", line);
  return capitalize(to_str(v));
}

Value f_length(Interpreter& in, const Value& v, CallArgs& a, int line) {
  check_args(in, a, {}, "length", line);
  return static_cast<std::int64_t>(length(in, v, line));
}

Value f_default(Interpreter& in, const Value& v, CallArgs& a, int line) {
  check_args(in, a, {"default_value", "boolean"}, "default", line);
  const Value dflt = param(a, 0, "default_value", Value(std::string()));
  const bool boolean = param(a, 1, "boolean", false).truthy();
  return v.is_undefined() || (boolean && !v.truthy()) ? dflt : v;
}

Value f_first(Interpreter& in, const Value& v, CallArgs& a, int line) {
  check_args(in, a, {}, "first", line);
  const std::vector<Value> items = in.iterate(v, line);
  return items.empty() ? Value::undefined("no first item: the sequence is empty") : items.front();
}

Value f_last(Interpreter& in, const Value& v, CallArgs& a, int line) {
  check_args(in, a, {}, "last", line);
  if (v.is_undefined()) in.fail(line, "last of an undefined value");
  const std::vector<Value> items = in.iterate(v, line);
  return items.empty() ? Value::undefined("no last item: the sequence is empty") : items.back();
}

Value f_float(Interpreter& in, const Value& v, CallArgs& a, int line) {
  check_args(in, a, {"default"}, "float", line);
  const Value dflt = param(a, 0, "default", 0.0);
  if (v.kind() == Value::Kind::Float) return v;
  if (v.is_number()) return static_cast<double>(int_param(in, v, "float()'s argument", line));
  if (v.is_string())
    if (const auto d = parse_float(v.text())) return *d;
  return dflt;
}

Value f_int(Interpreter& in, const Value& v, CallArgs& a, int line) {
  check_args(in, a, {"default", "base"}, "int", line);
  const Value dflt = param(a, 0, "default", 0);
  const std::int64_t base = int_param(in, param(a, 1, "base", 10), "int()'s base", line);
  if (base != 0 && (base < 2 || base > 36)) in.fail(line, "int() base must be >= 2 and <= 36, or 0");
  if (v.kind() == Value::Kind::Int) return v;
  if (v.kind() == Value::Kind::Bool) return std::int64_t{v.boolean()};
  if (v.kind() == Value::Kind::Float) {
    if (!(std::fabs(v.real()) < 9.2e18)) return dflt;
    return static_cast<std::int64_t>(v.real());
  }
  if (v.is_string()) {
    if (const auto i = parse_int(v.text(), static_cast<int>(base))) return *i;
    if (const auto d = parse_float(v.text()); d && std::fabs(*d) < 9.2e18) return static_cast<std::int64_t>(*d);
  }
  return dflt;
}

Value f_items(Interpreter& in, const Value& v, CallArgs& a, int line) {
  check_args(in, a, {}, "items", line);
  if (v.is_undefined()) return in.make_list({}, line);
  if (!v.is_dict()) in.fail(line, std::string("items filter needs a mapping, not '") + type_name(v) + "'");
  std::vector<Value> pairs;
  for (const auto& [k, x] : v.entries()) pairs.push_back(in.make_list({Value(k), x}, line, true));
  in.charge(static_cast<std::int64_t>(pairs.size()), line);
  return in.make_list(std::move(pairs), line);
}

Value f_join(Interpreter& in, const Value& v, CallArgs& a, int line) {
  check_args(in, a, {"d", "attribute"}, "join", line);
  const Value sep = param(a, 0, "d", Value(std::string()));
  const Value attribute = param(a, 1, "attribute");
  std::vector<Value> items = in.iterate(v, line);
  if (!attribute.is_undefined() && !attribute.is_none())
    for (Value& item : items) item = in.getattr(item, to_str(attribute), line);
  return join(in, items, to_str(sep), line);
}

Value f_list(Interpreter& in, const Value& v, CallArgs& a, int line) {
  check_args(in, a, {}, "list", line);
  return in.make_list(in.iterate(v, line), line);
}

Value f_lower(Interpreter& in, const Value& v, CallArgs& a, int line) {
  check_args(in, a, {}, "lower", line);
  return lower(to_str(v));
}

Value f_upper(Interpreter& in, const Value& v, CallArgs& a, int line) {
  check_args(in, a, {}, "upper", line);
  return upper(to_str(v));
}

Value f_replace(Interpreter& in, const Value& v, CallArgs& a, int line) {
  check_args(in, a, {"old", "new", "count"}, "replace", line);
  const Value count = param(a, 2, "count", Value::none());
  return replace(in, to_str(v), to_str(param(a, 0, "old")), to_str(param(a, 1, "new")),
                 count.is_none() ? -1 : int_param(in, count, "replace()'s count", line), line);
}

Value f_reverse(Interpreter& in, const Value& v, CallArgs& a, int line) {
  check_args(in, a, {}, "reverse", line);
  std::vector<Value> items = in.iterate(v, line);
  std::reverse(items.begin(), items.end());
  if (!v.is_string()) return in.make_list(std::move(items), line);
  return join(in, items, "", line);
}

Value f_string(Interpreter& in, const Value& v, CallArgs& a, int line) {
  check_args(in, a, {}, "string", line);
  return to_str(v);
}

Value f_safe(Interpreter& in, const Value& v, CallArgs& a, int line) {
  check_args(in, a, {}, "safe", line);
  return v;
}

Value f_title(Interpreter& in, const Value& v, CallArgs& a, int line) {
  check_args(in, a, {}, "title", line);
  return jinja_title(to_str(v));
}

Value f_trim(Interpreter& in, const Value& v, CallArgs& a, int line) {
  check_args(in, a, {"chars"}, "trim", line);
  const Value chars = param(a, 0, "chars", Value::none());
  const std::string s = to_str(v);
  return std::string(strip(s, true, true, chars.is_none() ? nullptr : &str_param(in, chars, "trim()'s chars", line)));
}

// transformers' tojson: json.dumps(x, ensure_ascii=False, indent=None,
// separators=None, sort_keys=False).
Value f_tojson(Interpreter& in, const Value& v, CallArgs& a, int line) {
  check_args(in, a, {"ensure_ascii", "indent", "separators", "sort_keys"}, "tojson", line);
  JsonOptions o;
  o.ensure_ascii = param(a, 0, "ensure_ascii", false).truthy();
  const Value indent = param(a, 1, "indent", Value::none());
  if (!indent.is_none()) o.indent = static_cast<int>(std::clamp<std::int64_t>(int_param(in, indent, "tojson()'s indent", line), 0, 1024));
  const Value seps = param(a, 2, "separators", Value::none());
  if (!seps.is_none()) {
    if (!seps.is_list() || seps.items().size() != 2 || !seps.items()[0].is_string() || !seps.items()[1].is_string())
      in.fail(line, "tojson()'s separators must be two strings");
    o.item_separator = seps.items()[0].text();
    o.key_separator = seps.items()[1].text();
  }
  o.sort_keys = param(a, 3, "sort_keys", false).truthy();
  o.max_bytes = in.limits().max_bytes;
  in.charge(static_cast<std::int64_t>(v.footprint() / 16), line);
  try {
    return to_json(v, o);
  } catch (const std::invalid_argument& e) {
    in.fail(line, std::string("tojson: ") + e.what());
  } catch (const std::length_error&) {
    in.check_size(SIZE_MAX, line);
  }
  return {};
}

// select/reject/selectattr/rejectattr: keep the items whose (attribute's) test
// result is `keep`; with no test name, the truthy ones.
Value select(Interpreter& in, const Value& v, CallArgs& a, int line, bool by_attribute, bool keep) {
  std::size_t next = 0;
  std::string attribute;
  if (by_attribute) {
    if (a.positional.empty()) in.fail(line, "selectattr/rejectattr need an attribute name");
    attribute = to_str(a.positional[next++]);
  }
  TestFn test = nullptr;
  if (next < a.positional.size()) {
    const std::string name = to_str(a.positional[next++]);
    test = find_test(name);
    if (!test) in.fail(line, "unsupported test '" + name + "'");
  }
  CallArgs test_args;
  test_args.positional.assign(a.positional.begin() + static_cast<long>(next), a.positional.end());
  test_args.named = a.named;
  std::vector<Value> out;
  for (const Value& item : in.iterate(v, line)) {
    const Value subject = by_attribute ? in.getattr(item, attribute, line) : item;
    in.charge(1, line);
    const bool passed = test ? test(in, subject, test_args, line) : subject.truthy();
    if (passed == keep) out.push_back(item);
  }
  return in.make_list(std::move(out), line);
}

Value f_select(Interpreter& in, const Value& v, CallArgs& a, int line) { return select(in, v, a, line, false, true); }
Value f_reject(Interpreter& in, const Value& v, CallArgs& a, int line) { return select(in, v, a, line, false, false); }
Value f_selectattr(Interpreter& in, const Value& v, CallArgs& a, int line) { return select(in, v, a, line, true, true); }
Value f_rejectattr(Interpreter& in, const Value& v, CallArgs& a, int line) { return select(in, v, a, line, true, false); }

// map(attribute='x', default=...) or map('filter', args...).
Value f_map(Interpreter& in, const Value& v, CallArgs& a, int line) {
  std::vector<Value> out;
  const Value* attribute = find_entry(a.named, "attribute");
  if (attribute) {
    const Value* dflt = find_entry(a.named, "default");
    for (const Value& item : in.iterate(v, line)) {
      Value x = in.getattr(item, to_str(*attribute), line);
      out.push_back(x.is_undefined() && dflt ? *dflt : x);
    }
    return in.make_list(std::move(out), line);
  }
  if (a.positional.empty()) in.fail(line, "map needs a filter name or attribute=");
  const std::string name = to_str(a.positional[0]);
  const FilterFn filter = find_filter(name);
  if (!filter) in.fail(line, "unsupported filter '" + name + "'");
  CallArgs rest;
  rest.positional.assign(a.positional.begin() + 1, a.positional.end());
  rest.named = a.named;
  for (const Value& item : in.iterate(v, line)) {
    CallArgs args = rest;
    out.push_back(filter(in, item, args, line));
  }
  return in.make_list(std::move(out), line);
}

template <class Fn>
struct Named {
  const char* name;
  Fn fn;
};

template <class Fn, std::size_t N>
Fn find_named(const Named<Fn> (&table)[N], std::string_view name) {
  for (const auto& entry : table)
    if (name == entry.name) return entry.fn;
  return nullptr;
}

const Named<FilterFn> kFilters[] = {
    {"abs", f_abs},         {"capitalize", f_capitalize}, {"count", f_length},   {"d", f_default},
    {"default", f_default}, {"first", f_first},           {"float", f_float},    {"int", f_int},
    {"items", f_items},     {"join", f_join},             {"last", f_last},      {"length", f_length},
    {"list", f_list},       {"lower", f_lower},           {"map", f_map},        {"reject", f_reject},
    {"rejectattr", f_rejectattr}, {"replace", f_replace}, {"reverse", f_reverse}, {"safe", f_safe},
    {"select", f_select},   {"selectattr", f_selectattr}, {"string", f_string},  {"title", f_title},
    {"tojson", f_tojson},   {"trim", f_trim},             {"upper", f_upper},
};

// ---- tests -----------------------------------------------------------------------------

bool t_defined(Interpreter&, const Value& v, CallArgs&, int) { return !v.is_undefined(); }
bool t_undefined(Interpreter&, const Value& v, CallArgs&, int) { return v.is_undefined(); }
bool t_none(Interpreter&, const Value& v, CallArgs&, int) { return v.is_none(); }
bool t_boolean(Interpreter&, const Value& v, CallArgs&, int) { return v.kind() == Value::Kind::Bool; }
bool t_true(Interpreter&, const Value& v, CallArgs&, int) { return v.kind() == Value::Kind::Bool && v.boolean(); }
bool t_false(Interpreter&, const Value& v, CallArgs&, int) { return v.kind() == Value::Kind::Bool && !v.boolean(); }
bool t_integer(Interpreter&, const Value& v, CallArgs&, int) { return v.kind() == Value::Kind::Int; }
bool t_float(Interpreter&, const Value& v, CallArgs&, int) { return v.kind() == Value::Kind::Float; }
bool t_number(Interpreter&, const Value& v, CallArgs&, int) { return v.is_number(); }
bool t_string(Interpreter&, const Value& v, CallArgs&, int) { return v.is_string(); }
bool t_mapping(Interpreter&, const Value& v, CallArgs&, int) { return v.is_dict(); }
// Undefined is iterable, a sequence and callable in jinja2 (it defines
// __iter__, __len__, __getitem__ and __call__).
bool t_iterable(Interpreter&, const Value& v, CallArgs&, int) {
  return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
}
bool t_callable(Interpreter&, const Value& v, CallArgs&, int) {
  return v.is_undefined() || v.kind() == Value::Kind::Function;
}
bool t_lower(Interpreter&, const Value& v, CallArgs&, int) {
  const std::string s = to_str(v);
  return std::any_of(s.begin(), s.end(), ascii_alpha) && lower(s) == s;
}
bool t_upper(Interpreter&, const Value& v, CallArgs&, int) {
  const std::string s = to_str(v);
  return std::any_of(s.begin(), s.end(), ascii_alpha) && upper(s) == s;
}

const Value& test_operand(Interpreter& in, CallArgs& a, int line) {
  if (a.positional.size() + a.named.size() != 1) in.fail(line, "this test takes one argument");
  return a.positional.empty() ? a.named[0].second : a.positional[0];
}

bool t_eq(Interpreter& in, const Value& v, CallArgs& a, int line) { return v == test_operand(in, a, line); }
bool t_ne(Interpreter& in, const Value& v, CallArgs& a, int line) { return !(v == test_operand(in, a, line)); }
bool t_lt(Interpreter& in, const Value& v, CallArgs& a, int line) { return in.compare("<", v, test_operand(in, a, line), line); }
bool t_le(Interpreter& in, const Value& v, CallArgs& a, int line) { return in.compare("<=", v, test_operand(in, a, line), line); }
bool t_gt(Interpreter& in, const Value& v, CallArgs& a, int line) { return in.compare(">", v, test_operand(in, a, line), line); }
bool t_ge(Interpreter& in, const Value& v, CallArgs& a, int line) { return in.compare(">=", v, test_operand(in, a, line), line); }
bool t_in(Interpreter& in, const Value& v, CallArgs& a, int line) { return in.compare("in", v, test_operand(in, a, line), line); }
bool t_sameas(Interpreter& in, const Value& v, CallArgs& a, int line) {
  const Value& w = test_operand(in, a, line);
  if (v.kind() != w.kind()) return false;
  if (v.is_none()) return true;
  if (v.kind() == Value::Kind::Bool) return v.boolean() == w.boolean();
  return v.object() && v.object() == w.object();
}
bool t_odd(Interpreter& in, const Value& v, CallArgs&, int line) { return int_param(in, v, "odd's value", line) % 2 != 0; }
bool t_even(Interpreter& in, const Value& v, CallArgs&, int line) { return int_param(in, v, "even's value", line) % 2 == 0; }
bool t_divisibleby(Interpreter& in, const Value& v, CallArgs& a, int line) {
  const std::int64_t d = int_param(in, test_operand(in, a, line), "divisibleby's argument", line);
  if (d == 0) in.fail(line, "integer division or modulo by zero");
  return d == -1 || int_param(in, v, "divisibleby's value", line) % d == 0;
}

const Named<TestFn> kTests[] = {
    {"defined", t_defined}, {"undefined", t_undefined}, {"none", t_none},       {"boolean", t_boolean},
    {"true", t_true},       {"false", t_false},         {"integer", t_integer}, {"float", t_float},
    {"number", t_number},   {"string", t_string},       {"mapping", t_mapping}, {"iterable", t_iterable},
    {"sequence", t_iterable}, {"callable", t_callable}, {"lower", t_lower},     {"upper", t_upper},
    {"eq", t_eq},           {"equalto", t_eq},          {"==", t_eq},           {"ne", t_ne},
    {"!=", t_ne},           {"lt", t_lt},               {"lessthan", t_lt},     {"le", t_le},
    {"gt", t_gt},           {"greaterthan", t_gt},      {"ge", t_ge},           {"in", t_in},
    {"sameas", t_sameas},   {"odd", t_odd},             {"even", t_even},       {"divisibleby", t_divisibleby},
};

// ---- methods -------------------------------------------------------------------------------

Value string_method(Interpreter& in, const std::string& s, const std::string& name, CallArgs& a, int line) {
  const auto fn = name.c_str();
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    check_args(in, a, {"chars"}, fn, line);
    const Value chars = param(a, 0, "chars", Value::none());
    return std::string(strip(s, name != "rstrip", name != "lstrip",
                             chars.is_none() ? nullptr : &str_param(in, chars, "strip()'s chars", line)));
  }
  if (name == "startswith" || name == "endswith") {
    check_args(in, a, {"prefix"}, fn, line);
    const Value p = param(a, 0, "prefix");
    std::vector<Value> options = p.is_list() && p.is_tuple() ? p.items() : std::vector<Value>{p};
    for (const Value& o : options) {
      const std::string& x = str_param(in, o, "startswith()/endswith()'s argument", line);
      const bool hit = name == "startswith" ? s.compare(0, x.size(), x) == 0
                                            : s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
      if (hit) return true;
    }
    return false;
  }
  if (name == "split") {
    check_args(in, a, {"sep", "maxsplit"}, fn, line);
    return split(in, s, param(a, 0, "sep", Value::none()), int_param(in, param(a, 1, "maxsplit", -1), "maxsplit", line),
                 line);
  }
  if (name == "replace") {
    check_args(in, a, {"old", "new", "count"}, fn, line);
    return replace(in, s, str_param(in, param(a, 0, "old"), "replace()'s old", line),
                   str_param(in, param(a, 1, "new"), "replace()'s new", line),
                   int_param(in, param(a, 2, "count", -1), "replace()'s count", line), line);
  }
  if (name == "find") {
    check_args(in, a, {"sub"}, fn, line);
    const std::size_t p = s.find(str_param(in, param(a, 0, "sub"), "find()'s argument", line));
    return p == std::string::npos ? std::int64_t{-1} : static_cast<std::int64_t>(code_point_count(s.substr(0, p)));
  }
  if (name == "join") {
    check_args(in, a, {"iterable"}, fn, line);
    return join(in, in.iterate(param(a, 0, "iterable"), line), s, line);
  }
  check_args(in, a, {}, fn, line);
  if (name == "upper") return upper(s);
  if (name == "lower") return lower(s);
  if (name == "title") return py_title(s);
  return capitalize(s);
}

Value dict_method(Interpreter& in, const Value& d, const std::string& name, CallArgs& a, int line) {
  if (name == "get") {
    check_args(in, a, {"key", "default"}, "get", line);
    const Value key = param(a, 0, "key");
    const Value* v = key.is_string() ? d.find(key.text()) : nullptr;
    return v ? *v : param(a, 1, "default", Value::none());
  }
  check_args(in, a, {}, name.c_str(), line);
  if (name == "items") return f_items(in, d, a, line);
  std::vector<Value> out;
  for (const auto& [k, v] : d.entries()) out.push_back(name == "keys" ? Value(k) : v);
  return in.make_list(std::move(out), line);
}

// strftime with the C locale's names whatever the process's locale is, as
// Python's datetime.strftime gives them.
std::string strftime_now(std::time_t t, const std::string& format) {
  std::tm tm{};
  localtime_r(&t, &tm);
  std::ostringstream s;
  s.imbue(std::locale::classic());
  s << std::put_time(&tm, format.c_str());
  return s.str();
}

}  // namespace

FilterFn find_filter(std::string_view name) { return find_named(kFilters, name); }
TestFn find_test(std::string_view name) { return find_named(kTests, name); }

Value find_method(const Value& self, const std::string& name) {
  static const char* const kStringMethods[] = {"strip",   "lstrip", "rstrip", "startswith", "endswith",
                                                "split",   "replace", "find",  "join",       "upper",
                                                "lower",   "title",  "capitalize"};
  static const char* const kDictMethods[] = {"items", "keys", "values", "get"};
  if (self.is_string()) {
    for (const char* m : kStringMethods)
      if (name == m)
        return make_function(name, [self, name](Interpreter& in, CallArgs& a, int line) {
          return string_method(in, self.text(), name, a, line);
        });
  } else if (self.is_dict()) {
    for (const char* m : kDictMethods)
      if (name == m)
        return make_function(name, [self, name](Interpreter& in, CallArgs& a, int line) {
          return dict_method(in, self, name, a, line);
        });
  }
  return {};
}

std::vector<Value::Entry> global_functions() {
  std::vector<Value::Entry> g;
  g.emplace_back("range", make_function("range", [](Interpreter& in, CallArgs& a, int line) {
                   check_args(in, a, {"start", "stop", "step"}, "range", line);
                   if (a.positional.empty()) in.fail(line, "range() needs at least one argument");
                   std::int64_t start = 0, stop = 0, step = 1;
                   if (a.positional.size() == 1) {
                     stop = int_param(in, a.positional[0], "range()'s argument", line);
                   } else {
                     start = int_param(in, a.positional[0], "range()'s start", line);
                     stop = int_param(in, a.positional[1], "range()'s stop", line);
                     if (a.positional.size() == 3) step = int_param(in, a.positional[2], "range()'s step", line);
                   }
                   if (step == 0) in.fail(line, "range() step must not be zero");
                   const long double count = step > 0 ? std::ceil((static_cast<long double>(stop) - start) / step)
                                                      : std::ceil((static_cast<long double>(start) - stop) / -step);
                   const std::size_t n = count > 0 ? static_cast<std::size_t>(std::min<long double>(count, 1e15L)) : 0;
                   in.check_size(n * 24, line);
                   in.charge(static_cast<std::int64_t>(n), line);
                   std::vector<Value> items;
                   for (std::size_t i = 0; i < n; ++i) items.emplace_back(start + static_cast<std::int64_t>(i) * step);
                   return in.make_list(std::move(items), line);
                 }));
  g.emplace_back("namespace", make_function("namespace", [](Interpreter& in, CallArgs& a, int line) {
                   auto ns = std::make_shared<NamespaceObject>();
                   if (a.positional.size() > 1) in.fail(line, "namespace() takes at most one positional argument");
                   if (!a.positional.empty()) {
                     if (!a.positional[0].is_dict()) in.fail(line, "namespace()'s argument must be a dict");
                     ns->attrs = a.positional[0].entries();
                   }
                   for (auto& [k, v] : a.named) set_entry(ns->attrs, k, v);
                   for (const auto& [k, v] : ns->attrs) {
                     if (!k.empty() && k[0] == '_') in.fail(line, "namespace attributes cannot start with '_': '" + k + "'");
                     if (v.kind() == Value::Kind::Namespace || v.kind() == Value::Kind::Function)
                       in.fail(line, "unsupported: a namespace or function stored in a namespace");
                   }
                   return Value::from_object(Value::Kind::Namespace, std::move(ns));
                 }));
  g.emplace_back("dict", make_function("dict", [](Interpreter& in, CallArgs& a, int line) {
                   if (a.positional.size() > 1) in.fail(line, "dict() takes at most one positional argument");
                   std::vector<Value::Entry> entries;
                   if (!a.positional.empty()) {
                     if (!a.positional[0].is_dict()) in.fail(line, "unsupported: dict() of anything but a dict");
                     entries = a.positional[0].entries();
                   }
                   for (auto& [k, v] : a.named) set_entry(entries, k, v);
                   return in.make_dict(std::move(entries), line);
                 }));
  g.emplace_back("raise_exception", make_function("raise_exception", [](Interpreter& in, CallArgs& a, int line) -> Value {
                   throw DataError(in.source() + ": line " + std::to_string(line) + ": the template refused the conversation: " +
                                   to_str(param(a, 0, "message")));
                 }));
  g.emplace_back("strftime_now", make_function("strftime_now", [](Interpreter& in, CallArgs& a, int line) {
                   check_args(in, a, {"format"}, "strftime_now", line);
                   return Value(strftime_now(in.now(), to_str(param(a, 0, "format"))));
                 }));
  return g;
}

}  // namespace lwb::data::jinja
