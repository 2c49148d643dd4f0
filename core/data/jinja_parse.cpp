// Jinja lexer and parser. The lexer reproduces jinja2's whitespace rules with
// transformers' settings (trim_blocks, lstrip_blocks, no trailing newline
// kept); the parser follows jinja2's grammar and operator precedence, and
// refuses what the interpreter does not implement, naming line and construct.
#include <algorithm>
#include <cstring>

#include "core/common/errors.h"
#include "core/data/jinja_internal.h"

namespace lwb::data::jinja {

namespace {

// Template nesting (blocks, parentheses, unary chains) and expression-tree
// depth. Real chat templates stay under 10; the bounds keep the parser's and
// the interpreter's recursion far from the stack's end on hostile input.
constexpr int kMaxNesting = 64;
constexpr int kMaxExprDepth = 256;

struct Token {
  enum class Type { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, End };
  Type type;
  std::string value;  // Text, Name, String (unescaped), Op
  int line;
  std::int64_t i = 0;
  double f = 0;
};

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

class Lexer {
 public:
  Lexer(std::string_view text, const std::string& source) : source_(source) {
    // jinja2 turns \r\n and \r into \n and drops one trailing newline.
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\r') {
        src_ += '\n';
        if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
      } else {
        src_ += text[i];
      }
    }
    if (!src_.empty() && src_.back() == '\n') src_.pop_back();
  }

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      const std::size_t start = find_tag(pos_);
      std::string text = src_.substr(pos_, start - pos_);
      if (start == src_.size()) {
        emit_text(std::move(text));
        break;
      }
      const char kind = src_[start + 1];
      const char sign = start + 2 < src_.size() && (src_[start + 2] == '-' || src_[start + 2] == '+') ? src_[start + 2] : 0;
      control_whitespace(text, sign, kind != '{');
      const int text_line = line_;
      line_ += count_newlines(pos_, start);
      if (!text.empty()) tokens_.push_back({Token::Type::Text, std::move(text), text_line});
      pos_ = start + 2 + (sign ? 1 : 0);
      if (kind == '#') {
        comment();
      } else if (kind == '%' && raw_begin()) {
        raw();
      } else {
        tag(kind == '%');
      }
    }
    tokens_.push_back({Token::Type::End, "", line_});
    return std::move(tokens_);
  }

 private:
  [[noreturn]] void fail(const std::string& message) const {
    throw FormatError(source_, "line " + std::to_string(line_) + ": " + message);
  }

  std::size_t find_tag(std::size_t from) const {
    for (std::size_t i = from; i + 1 < src_.size(); ++i)
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    return src_.size();
  }

  int count_newlines(std::size_t from, std::size_t to) const {
    return static_cast<int>(std::count(src_.begin() + static_cast<long>(from), src_.begin() + static_cast<long>(to), '\n'));
  }

  bool at(std::size_t i, const char* s) const { return src_.compare(i, std::strlen(s), s) == 0; }

  std::size_t skip_space(std::size_t i) const {
    while (i < src_.size()) {
      std::size_t j = i;
      if (!is_space(decode_utf8(src_, j))) break;
      i = j;
    }
    return i;
  }

  void emit_text(std::string text) {
    if (!text.empty()) tokens_.push_back({Token::Type::Text, std::move(text), line_});
  }

  // The text before a tag: "-" strips all its trailing whitespace; otherwise
  // lstrip_blocks strips the indentation before a block or comment tag that
  // begins its line.
  void control_whitespace(std::string& text, char sign, bool block_or_comment) const {
    if (sign == '-') {
      text.resize(strip(text, false, true).size());
    } else if (sign != '+' && block_or_comment) {
      const std::size_t nl = text.rfind('\n');
      const std::size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
      if ((l_pos > 0 || line_starting_) && l_pos < text.size() &&
          strip(std::string_view(text).substr(l_pos), true, false).empty())
        text.resize(l_pos);
    }
  }

  // After a block or comment end: "-" eats all whitespace, "+" nothing,
  // otherwise trim_blocks eats one newline.
  void after_end(char sign, bool trim_newline) {
    const std::size_t from = pos_;
    if (sign == '-') {
      pos_ = skip_space(pos_);
    } else if (sign != '+' && trim_newline && pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;
    }
    line_ += count_newlines(from, pos_);
    line_starting_ = pos_ > 0 && src_[pos_ - 1] == '\n';
  }

  void comment() {
    const std::size_t close = src_.find("#}", pos_);
    if (close == std::string::npos) fail("missing end of comment tag");
    char sign = 0;
    if (close > pos_ && (src_[close - 1] == '-' || src_[close - 1] == '+')) sign = src_[close - 1];
    line_ += count_newlines(pos_, close);
    pos_ = close + 2;
    after_end(sign, true);
  }

  // {% raw %} (with optional whitespace control) at pos_, just after "{%" and
  // its sign; consumes it when present.
  bool raw_begin() {
    std::size_t i = skip_space(pos_);
    if (!at(i, "raw")) return false;
    i = skip_space(i + 3);
    if (at(i, "-%}")) {
      i = skip_space(i + 3);
    } else if (at(i, "%}")) {
      i += 2;
    } else {
      return false;
    }
    line_ += count_newlines(pos_, i);
    pos_ = i;
    line_starting_ = src_[pos_ - 1] == '\n';
    return true;
  }

  void raw() {
    const int start_line = line_;
    for (std::size_t i = src_.find("{%", pos_); i != std::string::npos; i = src_.find("{%", i + 1)) {
      const char sign = i + 2 < src_.size() && (src_[i + 2] == '-' || src_[i + 2] == '+') ? src_[i + 2] : 0;
      std::size_t j = skip_space(i + 2 + (sign ? 1 : 0));
      if (!at(j, "endraw")) continue;
      j = skip_space(j + 6);
      char end_sign = 0;
      if (at(j, "-%}") || at(j, "+%}")) {
        end_sign = src_[j];
        j += 3;
      } else if (at(j, "%}")) {
        j += 2;
      } else {
        continue;
      }
      std::string text = src_.substr(pos_, i - pos_);
      control_whitespace(text, sign, true);
      line_ += count_newlines(pos_, j);
      tokens_.push_back({Token::Type::Text, std::move(text), start_line});
      pos_ = j;
      after_end(end_sign, true);
      return;
    }
    fail("missing end of raw directive");
  }

  // The tokens of a {{ }} or {% %} tag, up to and including its end.
  void tag(bool block) {
    tokens_.push_back({block ? Token::Type::BlockBegin : Token::Type::VarBegin, "", line_});
    std::vector<char> open;  // brackets: "}}" inside a dict literal does not end the tag
    for (;;) {
      if (pos_ >= src_.size()) fail(block ? "missing end of block tag '%}'" : "missing end of expression '}}'");
      if (open.empty() && end_of_tag(block)) return;
      const std::size_t after_space = skip_space(pos_);
      if (after_space != pos_) {
        line_ += count_newlines(pos_, after_space);
        pos_ = after_space;
        continue;
      }
      const char c = src_[pos_];
      if (is_digit(c)) {
        number();
      } else if (is_name_start(c)) {
        std::size_t j = pos_;
        while (j < src_.size() && is_name_char(src_[j])) ++j;
        tokens_.push_back({Token::Type::Name, src_.substr(pos_, j - pos_), line_});
        pos_ = j;
      } else if (c == '\'' || c == '"') {
        string(c);
      } else {
        op(open);
      }
    }
  }

  bool end_of_tag(bool block) {
    const char* close = block ? "%}" : "}}";
    char sign = 0;
    if ((src_[pos_] == '-' || (block && src_[pos_] == '+')) && at(pos_ + 1, close)) {
      sign = src_[pos_];
      pos_ += 3;
    } else if (at(pos_, close)) {
      pos_ += 2;
    } else {
      return false;
    }
    tokens_.push_back({block ? Token::Type::BlockEnd : Token::Type::VarEnd, "", line_});
    after_end(sign, block);
    return true;
  }

  // jinja2's number rules: floats need a fraction or an exponent; integers
  // may be 0b/0o/0x prefixed; both allow "_" between digits.
  void number() {
    const auto digits = [&](std::size_t i, auto ok) {
      const std::size_t start = i;
      while (i < src_.size() && (ok(src_[i]) || (src_[i] == '_' && i > start && i + 1 < src_.size() && ok(src_[i + 1]))))
        ++i;
      return i;
    };
    const auto dec = [](char c) { return is_digit(c); };
    std::size_t end = digits(pos_, dec);
    bool is_float = false;
    if (end + 1 < src_.size() && src_[end] == '.' && is_digit(src_[end + 1])) {
      end = digits(end + 1, dec);
      is_float = true;
    }
    if (end < src_.size() && (src_[end] == 'e' || src_[end] == 'E')) {
      std::size_t k = end + 1;
      if (k < src_.size() && (src_[k] == '+' || src_[k] == '-')) ++k;
      if (k < src_.size() && is_digit(src_[k])) {
        end = digits(k, dec);
        is_float = true;
      }
    }
    std::string text;
    Token t{is_float ? Token::Type::Float : Token::Type::Int, "", line_};
    if (is_float) {
      for (std::size_t i = pos_; i < end; ++i)
        if (src_[i] != '_') text += src_[i];
      t.f = std::strtod(text.c_str(), nullptr);
      pos_ = end;
      tokens_.push_back(std::move(t));
      return;
    }
    int base = 10;
    std::size_t begin = pos_;
    const char p = pos_ + 1 < src_.size() ? static_cast<char>(src_[pos_ + 1] | 0x20) : 0;
    if (src_[pos_] == '0' && (p == 'x' || p == 'o' || p == 'b')) {
      base = p == 'x' ? 16 : p == 'o' ? 8 : 2;
      begin = pos_ + 2;
      if (begin < src_.size() && src_[begin] == '_') ++begin;
      const auto ok = [base](char c) {
        const int v = is_digit(c) ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : 99;
        return v < base;
      };
      end = digits(begin, ok);
      if (end == begin) fail("invalid integer literal");
    } else if (src_[pos_] == '0') {
      end = digits(pos_, [](char c) { return c == '0'; });
    }
    for (std::size_t i = begin; i < end; ++i) {
      if (src_[i] == '_') continue;
      const char c = static_cast<char>(src_[i] | 0x20);
      const int v = is_digit(src_[i]) ? src_[i] - '0' : c - 'a' + 10;
      if (__builtin_mul_overflow(t.i, base, &t.i) || __builtin_add_overflow(t.i, v, &t.i))
        fail("integer literal too large");
    }
    pos_ = end;
    tokens_.push_back(std::move(t));
  }

  // Python's unicode-escape decoding of a string literal's body.
  void string(char quote) {
    const int start_line = line_;
    std::string out;
    std::size_t i = pos_ + 1;
    for (;;) {
      if (i >= src_.size()) fail("unterminated string");
      const char c = src_[i];
      if (c == quote) break;
      if (c == '\n') ++line_;
      if (c != '\\') {
        out += c;
        ++i;
        continue;
      }
      if (i + 1 >= src_.size()) fail("unterminated string");
      const char e = src_[i + 1];
      i += 2;
      const auto hex = [&](int n) {
        std::uint32_t v = 0;
        for (int k = 0; k < n; ++k, ++i) {
          const char h = i < src_.size() ? static_cast<char>(src_[i] | 0x20) : 0;
          if (i >= src_.size() || (!is_digit(src_[i]) && !(h >= 'a' && h <= 'f')))
            fail("truncated \\x, \\u or \\U escape in a string");
          v = v * 16 + static_cast<std::uint32_t>(is_digit(src_[i]) ? src_[i] - '0' : h - 'a' + 10);
        }
        if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) fail("escape outside Unicode in a string");
        append_utf8(out, v);
      };
      switch (e) {
        case '\n': ++line_; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'v': out += '\v'; break;
        case 'x': hex(2); break;
        case 'u': hex(4); break;
        case 'U': hex(8); break;
        case 'N': fail("\\N{...} escapes are not supported");
        default:
          if (e >= '0' && e <= '7') {
            std::uint32_t v = static_cast<std::uint32_t>(e - '0');
            for (int k = 0; k < 2 && i < src_.size() && src_[i] >= '0' && src_[i] <= '7'; ++k, ++i)
              v = v * 8 + static_cast<std::uint32_t>(src_[i] - '0');
            append_utf8(out, v);
          } else if (static_cast<unsigned char>(e) >= 0x80) {
            // Python first writes a non-ASCII character as its \x/\u/\U escape,
            // whose backslash the literal's backslash then escapes.
            std::size_t k = i - 1;
            out += backslash_escape(decode_utf8(src_, k));
            i = k;
          } else {
            out += '\\';
            out += e;
          }
      }
    }
    tokens_.push_back({Token::Type::String, std::move(out), start_line});
    pos_ = i + 1;
  }

  void op(std::vector<char>& open) {
    static const char* const kOps[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~",
                                       "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"};
    for (const char* o : kOps) {
      if (!at(pos_, o)) continue;
      const char c = o[0];
      if (c == '(' || c == '[' || c == '{') open.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
      if ((c == ')' || c == ']' || c == '}') && o[1] == 0) {
        if (open.empty()) fail(std::string("unexpected '") + c + "'");
        if (open.back() != c) fail(std::string("unexpected '") + c + "', expected '" + open.back() + "'");
        open.pop_back();
      }
      tokens_.push_back({Token::Type::Op, o, line_});
      pos_ += std::strlen(o);
      return;
    }
    std::size_t j = pos_;
    const std::uint32_t cp = decode_utf8(src_, j);
    std::string ch;
    append_utf8(ch, cp);
    fail("unexpected character '" + ch + "'");
  }

  const std::string& source_;
  std::string src_;
  std::size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

class Parser {
 public:
  Parser(std::vector<Token> tokens, const std::string& source) : t_(std::move(tokens)), source_(source) {}

  std::shared_ptr<const Program> run() {
    auto program = std::make_shared<Program>();
    program->body = body({});
    return program;
  }

 private:
  using Type = Token::Type;

  // ---- helpers ----
  const Token& cur() const { return t_[i_]; }
  const Token& peek(std::size_t k = 1) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
  void next() {
    if (i_ + 1 < t_.size()) ++i_;
  }
  bool is_op(const char* op) const { return cur().type == Type::Op && cur().value == op; }
  bool is_name(const char* name) const { return cur().type == Type::Name && cur().value == name; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(const char* name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }
  [[noreturn]] void fail(int line, const std::string& message) const {
    throw FormatError(source_, "line " + std::to_string(line) + ": " + message);
  }
  static std::string describe(const Token& t) {
    switch (t.type) {
      case Type::Text: return "template text";
      case Type::VarBegin: return "'{{'";
      case Type::VarEnd: return "'}}'";
      case Type::BlockBegin: return "'{%'";
      case Type::BlockEnd: return "'%}'";
      case Type::End: return "end of template";
      case Type::String: return "string";
      case Type::Int:
      case Type::Float: return "number";
      default: return "'" + t.value + "'";
    }
  }
  [[noreturn]] void unexpected(const char* expected) const {
    fail(cur().line, "expected " + std::string(expected) + ", got " + describe(cur()));
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) unexpected((std::string("'") + op + "'").c_str());
  }
  std::string expect_name() {
    if (cur().type != Type::Name) unexpected("a name");
    std::string n = cur().value;
    next();
    return n;
  }
  void expect_block_end() {
    if (cur().type != Type::BlockEnd) unexpected("'%}'");
    next();
  }

  struct Nest {
    Parser& p;
    Nest(Parser& parser, int line) : p(parser) {
      if (++p.nesting_ > kMaxNesting) p.fail(line, "template nested deeper than " + std::to_string(kMaxNesting) + " levels");
    }
    ~Nest() { --p.nesting_; }
  };

  ExprPtr node(Expr::Kind kind, int line, std::vector<ExprPtr> args = {}) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    e->args = std::move(args);
    settle(*e);
    return e;
  }
  // Recomputes a node's depth after its operands changed.
  void settle(Expr& e) const {
    int d = 0;
    for (const auto& a : e.args)
      if (a) d = std::max(d, a->depth);
    for (const auto& [k, a] : e.kwargs) d = std::max(d, a->depth);
    e.depth = d + 1;
    if (e.depth > kMaxExprDepth) fail(e.line, "expression nested deeper than " + std::to_string(kMaxExprDepth) + " levels");
  }

  // ---- statements ----

  // Statements up to a block tag whose keyword is in `ends` (not consumed).
  Body body(const std::vector<const char*>& ends) {
    Nest nest(*this, cur().line);
    Body out;
    for (;;) {
      const Token& t = cur();
      if (t.type == Type::End) {
        if (!ends.empty()) fail(t.line, "unexpected end of template, expected '" + std::string(ends.back()) + "'");
        return out;
      }
      if (t.type == Type::Text) {
        auto s = stmt(Stmt::Kind::Text, t.line);
        s->text = t.value;
        out.push_back(std::move(s));
        next();
      } else if (t.type == Type::VarBegin) {
        next();
        auto s = stmt(Stmt::Kind::Output, t.line);
        s->expr = tuple(true);
        if (cur().type != Type::VarEnd) unexpected("'}}'");
        next();
        out.push_back(std::move(s));
      } else if (t.type == Type::BlockBegin) {
        const Token& kw = peek();
        if (kw.type == Type::Name)
          for (const char* e : ends)
            if (kw.value == e) return out;
        next();
        out.push_back(statement());
      } else {
        unexpected("template text or a tag");
      }
    }
  }

  static std::unique_ptr<Stmt> stmt(Stmt::Kind kind, int line) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->line = line;
    return s;
  }

  // Consumes "{% name" of a closing or intermediate tag.
  void keyword(const char* name) {
    if (cur().type != Type::BlockBegin) unexpected("'{%'");
    next();
    if (!skip_name(name)) unexpected((std::string("'") + name + "'").c_str());
  }

  // Consumes a whole "{% name %}".
  void bare_tag(const char* name) {
    keyword(name);
    expect_block_end();
  }

  std::unique_ptr<Stmt> statement() {
    const int line = cur().line;
    if (cur().type != Type::Name) unexpected("a statement name");
    const std::string kw = cur().value;
    next();
    if (kw == "if") return if_stmt(line);
    if (kw == "for") return for_stmt(line);
    if (kw == "set") return set_stmt(line);
    if (kw == "macro") return macro_stmt(line);
    if (kw == "break" || kw == "continue") {
      if (loops_ == 0) fail(line, "'" + kw + "' outside a loop");
      expect_block_end();
      return stmt(kw == "break" ? Stmt::Kind::Break : Stmt::Kind::Continue, line);
    }
    if (kw == "generation") {
      // transformers' assistant-mask tag: renders its body.
      expect_block_end();
      auto s = stmt(Stmt::Kind::Scope, line);
      s->body = body({"endgeneration"});
      bare_tag("endgeneration");
      return s;
    }
    if (kw.rfind("end", 0) == 0 || kw == "elif" || kw == "else") fail(line, "unexpected '{% " + kw + " %}'");
    static const char* const kUnsupported[] = {"block", "extends", "include", "import", "from", "call", "filter",
                                               "with", "autoescape", "do", "trans", "print"};
    for (const char* u : kUnsupported)
      if (kw == u) fail(line, "unsupported statement '{% " + kw + " %}'");
    fail(line, "unknown statement '" + kw + "'");
  }

  std::unique_ptr<Stmt> if_stmt(int line) {
    auto s = stmt(Stmt::Kind::If, line);
    ExprPtr c = expression(false);
    expect_block_end();
    for (;;) {
      Body b = body({"elif", "else", "endif"});
      s->branches.emplace_back(std::move(c), std::move(b));
      next();  // "{%"
      const std::string kw = cur().value;
      next();
      if (kw == "elif") {
        c = expression(false);
        expect_block_end();
      } else if (kw == "else") {
        expect_block_end();
        s->branches.emplace_back(nullptr, body({"endif"}));
        bare_tag("endif");
        return s;
      } else {
        expect_block_end();
        return s;
      }
    }
  }

  std::unique_ptr<Stmt> for_stmt(int line) {
    auto s = stmt(Stmt::Kind::For, line);
    const bool paren = skip_op("(");
    do s->targets.push_back(expect_name());
    while (skip_op(","));
    if (paren) expect_op(")");
    if (!skip_name("in")) unexpected("'in'");
    s->expr = tuple(false);
    if (skip_name("if")) s->cond = expression(true);
    if (is_name("recursive")) fail(cur().line, "unsupported recursive for loop");
    expect_block_end();
    ++loops_;
    s->body = body({"else", "endfor"});
    --loops_;
    if (peek().type == Type::Name && peek().value == "else") {
      bare_tag("else");
      s->else_body = body({"endfor"});
    }
    bare_tag("endfor");
    return s;
  }

  std::unique_ptr<Stmt> set_stmt(int line) {
    auto s = stmt(Stmt::Kind::Set, line);
    s->text = expect_name();
    if (skip_op(".")) {
      s->attr = expect_name();
    } else {
      while (skip_op(",")) s->targets.push_back(expect_name());
      if (!s->targets.empty()) s->targets.insert(s->targets.begin(), s->text);
    }
    if (skip_op("=")) {
      s->expr = tuple(true);
      expect_block_end();
      return s;
    }
    if (!s->attr.empty() || !s->targets.empty()) unexpected("'='");
    if (is_op("|")) fail(cur().line, "unsupported filtered block set");
    expect_block_end();
    s->kind = Stmt::Kind::SetBlock;
    s->body = body({"endset"});
    bare_tag("endset");
    return s;
  }

  std::unique_ptr<Stmt> macro_stmt(int line) {
    auto s = stmt(Stmt::Kind::Macro, line);
    s->text = expect_name();
    expect_op("(");
    while (!is_op(")")) {
      if (!s->params.empty()) expect_op(",");
      if (is_op(")")) break;
      std::string name = expect_name();
      s->params.emplace_back(std::move(name), skip_op("=") ? expression(true) : nullptr);
    }
    next();
    expect_block_end();
    const int loops = loops_;
    loops_ = 0;
    s->body = body({"endmacro"});
    loops_ = loops;
    keyword("endmacro");
    if (cur().type == Type::Name) next();
    expect_block_end();
    return s;
  }

  // ---- expressions (jinja2's Parser, function for function) ----

  // A comma-separated expression becomes a tuple.
  ExprPtr tuple(bool with_condexpr) {
    const int line = cur().line;
    ExprPtr first = expression(with_condexpr);
    if (!is_op(",")) return first;
    std::vector<ExprPtr> items;
    items.push_back(std::move(first));
    while (skip_op(",")) {
      if (ends_tuple()) break;
      items.push_back(expression(with_condexpr));
    }
    return node(Expr::Kind::Tuple, line, std::move(items));
  }

  bool ends_tuple() const {
    const Type t = cur().type;
    return t == Type::VarEnd || t == Type::BlockEnd || t == Type::End || is_op(")") || is_name("if") ||
           is_name("in");
  }

  ExprPtr expression(bool with_condexpr) { return with_condexpr ? condexpr() : binary_level(0); }

  ExprPtr condexpr() {
    Nest nest(*this, cur().line);
    ExprPtr expr = binary_level(0);
    while (is_name("if")) {
      const int line = cur().line;
      next();
      ExprPtr cond = binary_level(0);
      ExprPtr other = skip_name("else") ? condexpr() : nullptr;
      std::vector<ExprPtr> args;
      args.push_back(std::move(expr));
      args.push_back(std::move(cond));
      args.push_back(std::move(other));
      expr = node(Expr::Kind::Cond, line, std::move(args));
    }
    return expr;
  }

  // The left-associative binary levels, loosest first: jinja2's parse_or,
  // parse_and, then (below not and the comparisons) parse_math1, parse_concat,
  // parse_math2 and parse_pow.
  ExprPtr binary_level(std::size_t level) {
    struct Level {
      Expr::Kind kind;
      std::vector<const char*> ops;
    };
    static const Level kLevels[] = {{Expr::Kind::Or, {"or"}},   {Expr::Kind::And, {"and"}},
                                    {Expr::Kind::Binary, {"+", "-"}}, {Expr::Kind::Binary, {"~"}},
                                    {Expr::Kind::Binary, {"*", "/", "//", "%"}}, {Expr::Kind::Binary, {"**"}}};
    const auto operand = [&] { return level == 1 ? not_expr() : level == 5 ? unary(true) : binary_level(level + 1); };
    ExprPtr left = operand();
    for (;;) {
      const Level& l = kLevels[level];
      const auto op = std::find_if(l.ops.begin(), l.ops.end(), [&](const char* o) {
        return l.kind == Expr::Kind::Binary ? is_op(o) : is_name(o);
      });
      if (op == l.ops.end()) return left;
      const int line = cur().line;
      next();
      std::vector<ExprPtr> args;
      args.push_back(std::move(left));
      args.push_back(operand());
      left = node(l.kind, line, std::move(args));
      left->name = *op;
    }
  }

  ExprPtr not_expr() {
    if (!is_name("not")) return compare();
    const int line = cur().line;
    Nest nest(*this, line);
    next();
    std::vector<ExprPtr> args;
    args.push_back(not_expr());
    return node(Expr::Kind::Not, line, std::move(args));
  }

  ExprPtr compare() {
    const int line = cur().line;
    ExprPtr first = binary_level(2);
    std::vector<ExprPtr> args;
    std::vector<std::string> ops;
    for (;;) {
      std::string op;
      if (cur().type == Type::Op && (cur().value == "==" || cur().value == "!=" || cur().value == "<" ||
                                     cur().value == "<=" || cur().value == ">" || cur().value == ">=")) {
        op = cur().value;
        next();
      } else if (is_name("in")) {
        op = "in";
        next();
      } else if (is_name("not") && peek().type == Type::Name && peek().value == "in") {
        op = "not in";
        next();
        next();
      } else {
        break;
      }
      ops.push_back(op);
      args.push_back(binary_level(2));
    }
    if (ops.empty()) return first;
    args.insert(args.begin(), std::move(first));
    ExprPtr e = node(Expr::Kind::Compare, line, std::move(args));
    e->ops = std::move(ops);
    return e;
  }

  ExprPtr unary(bool with_filter) {
    const int line = cur().line;
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      Nest nest(*this, line);
      const Expr::Kind kind = is_op("-") ? Expr::Kind::Neg : Expr::Kind::Pos;
      next();
      std::vector<ExprPtr> args;
      args.push_back(unary(false));
      e = node(kind, line, std::move(args));
    } else {
      e = primary();
    }
    e = postfix(std::move(e));
    return with_filter ? filters(std::move(e)) : std::move(e);
  }

  ExprPtr constant(Value v, int line) {
    ExprPtr e = node(Expr::Kind::Const, line);
    e->value = std::move(v);
    return e;
  }

  ExprPtr primary() {
    const Token& t = cur();
    const int line = t.line;
    Nest nest(*this, line);
    switch (t.type) {
      case Type::Name: {
        const std::string n = t.value;
        next();
        if (n == "true" || n == "True") return constant(true, line);
        if (n == "false" || n == "False") return constant(false, line);
        if (n == "none" || n == "None") return constant(Value::none(), line);
        ExprPtr e = node(Expr::Kind::Name, line);
        e->name = n;
        return e;
      }
      case Type::String: {
        std::string s;
        while (cur().type == Type::String) {  // adjacent literals concatenate
          s += cur().value;
          next();
        }
        return constant(std::move(s), line);
      }
      case Type::Int: {
        const std::int64_t v = t.i;
        next();
        return constant(v, line);
      }
      case Type::Float: {
        const double v = t.f;
        next();
        return constant(v, line);
      }
      default: break;
    }
    if (skip_op("(")) {
      if (skip_op(")")) return node(Expr::Kind::Tuple, line);
      ExprPtr first = expression(true);
      if (skip_op(")")) return first;
      std::vector<ExprPtr> items;
      items.push_back(std::move(first));
      while (skip_op(",")) {
        if (is_op(")")) break;
        items.push_back(expression(true));
      }
      expect_op(")");
      return node(Expr::Kind::Tuple, line, std::move(items));
    }
    if (skip_op("[")) {
      std::vector<ExprPtr> items;
      while (!is_op("]")) {
        if (!items.empty()) expect_op(",");
        if (is_op("]")) break;
        items.push_back(expression(true));
      }
      next();
      return node(Expr::Kind::List, line, std::move(items));
    }
    if (skip_op("{")) {
      std::vector<ExprPtr> items;
      while (!is_op("}")) {
        if (!items.empty()) expect_op(",");
        if (is_op("}")) break;
        items.push_back(expression(true));
        expect_op(":");
        items.push_back(expression(true));
      }
      next();
      return node(Expr::Kind::Dict, line, std::move(items));
    }
    unexpected("an expression");
  }

  ExprPtr postfix(ExprPtr e) {
    for (;;) {
      if (is_op(".") || is_op("[")) {
        e = subscript(std::move(e));
      } else if (is_op("(")) {
        e = call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr filters(ExprPtr e) {
    for (;;) {
      if (is_op("|")) {
        e = filter(std::move(e));
      } else if (is_name("is")) {
        e = test(std::move(e));
      } else if (is_op("(")) {
        e = call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr subscript(ExprPtr subject) {
    const int line = cur().line;
    std::vector<ExprPtr> args;
    args.push_back(std::move(subject));
    if (skip_op(".")) {
      if (cur().type == Type::Name) {
        std::string attr = cur().value;
        next();
        ExprPtr e = node(Expr::Kind::Attr, line, std::move(args));
        e->name = std::move(attr);
        return e;
      }
      if (cur().type != Type::Int) unexpected("a name or number after '.'");
      args.push_back(constant(cur().i, line));
      next();
      return node(Expr::Kind::Item, line, std::move(args));
    }
    next();  // "["
    bool is_slice = false;
    for (int part = 0; part < 3; ++part) {
      if (is_op(":") || is_op("]")) {
        args.push_back(nullptr);
      } else {
        args.push_back(expression(true));
      }
      if (part == 2 || !skip_op(":")) break;
      is_slice = true;
    }
    if (is_op(",")) fail(cur().line, "unsupported tuple subscript");
    expect_op("]");
    if (!is_slice) {
      if (!args[1]) fail(line, "empty subscript");
      return node(Expr::Kind::Item, line, std::move(args));
    }
    args.resize(4);
    return node(Expr::Kind::Slice, line, std::move(args));
  }

  ExprPtr call(ExprPtr callee) {
    const int line = cur().line;
    std::vector<ExprPtr> args;
    args.push_back(std::move(callee));
    ExprPtr e = node(Expr::Kind::Call, line, std::move(args));
    call_args_after_subject(*e);
    return e;
  }

  // Arguments follow the subject (args[0]); the first comma is only needed
  // between arguments.
  void call_args_after_subject(Expr& e) {
    expect_op("(");
    bool first = true;
    while (!is_op(")")) {
      if (!first) {
        expect_op(",");
        if (is_op(")")) break;
      }
      first = false;
      if (is_op("*") || is_op("**")) fail(cur().line, "unsupported *args or **kwargs in a call");
      if (cur().type == Type::Name && peek().type == Type::Op && peek().value == "=") {
        std::string key = cur().value;
        next();
        next();
        e.kwargs.emplace_back(std::move(key), expression(true));
      } else {
        if (!e.kwargs.empty()) fail(cur().line, "positional argument after keyword argument");
        e.args.push_back(expression(true));
      }
    }
    next();
    settle(e);
  }

  ExprPtr filter(ExprPtr subject) {
    const int line = cur().line;
    next();  // "|"
    const std::string name = expect_name();
    if (is_op(".")) fail(line, "unsupported dotted filter name");
    const FilterFn fn = find_filter(name);
    if (!fn) fail(line, "unsupported filter '" + name + "'");
    std::vector<ExprPtr> args;
    args.push_back(std::move(subject));
    ExprPtr e = node(Expr::Kind::Filter, line, std::move(args));
    e->name = name;
    e->filter = fn;
    if (is_op("(")) call_args_after_subject(*e);
    return e;
  }

  ExprPtr test(ExprPtr subject) {
    const int line = cur().line;
    next();  // "is"
    const bool negate = skip_name("not");
    const std::string name = expect_name();
    const TestFn fn = find_test(name);
    if (!fn) fail(line, "unsupported test '" + name + "'");
    std::vector<ExprPtr> args;
    args.push_back(std::move(subject));
    ExprPtr e = node(Expr::Kind::Test, line, std::move(args));
    e->name = name;
    e->test = fn;
    e->negate = negate;
    if (is_op("(")) {
      call_args_after_subject(*e);
    } else {
      // jinja2 takes one bare argument: `x is divisibleby 3`, `x is sameas none`.
      const Type ty = cur().type;
      const bool arg_start = ty == Type::Name || ty == Type::String || ty == Type::Int || ty == Type::Float ||
                             is_op("(") || is_op("[") || is_op("{");
      if (arg_start && !is_name("else") && !is_name("or") && !is_name("and")) {
        if (is_name("is")) fail(cur().line, "'is' after a test name");
        e->args.push_back(postfix(primary()));
        settle(*e);
      }
    }
    return e;
  }

  std::vector<Token> t_;
  std::size_t i_ = 0;
  const std::string& source_;
  int nesting_ = 0;
  int loops_ = 0;
};

}  // namespace

std::shared_ptr<const Program> parse_template(std::string_view text, const std::string& source) {
  if (!valid_utf8(text)) throw FormatError(source, "template is not valid UTF-8");
  return Parser(Lexer(text, source).run(), source).run();
}

}  // namespace lwb::data::jinja
