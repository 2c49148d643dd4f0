// Chat templates against transformers: every real template in
// tests/data/chat_templates renders each conversation exactly as
// apply_chat_template does (golden.json, from
// tests/reference/make_chat_template_golden.py), as do small templates that
// each exercise one Jinja feature. Then what transformers cannot check: the
// errors (refusals, unsupported constructs, syntax) name template, line and
// construct; hostile templates stop at the limits; assistant spans; and
// loading a template from a Hugging Face folder.
#include <QTemporaryDir>
#include <QtTest>

#include <ctime>
#include <fstream>
#include <sstream>

#include "core/common/errors.h"
#include "core/data/chat_template.h"
#include "core/data/jinja.h"
#include "expect_throw.h"

using namespace lwb;
using namespace lwb::data;
using jinja::Value;

namespace {

const std::string kDir = std::string(LWB_TEST_DATA_DIR) + "/chat_templates/";

std::string read(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

void write(const QString& path, const std::string& text) {
  std::ofstream f(path.toStdString(), std::ios::binary);
  f << text;
}

const Value& golden() {
  static const Value g = Value::from_json(read(kDir + "golden.json"), "golden.json");
  return g;
}

const Value& at(const Value& dict, const char* key) {
  const Value* v = dict.find(key);
  if (!v) qFatal("golden.json: missing \"%s\"", key);
  return *v;
}

const Value* template_entry(const std::string& name) {
  static const Value entries = Value::from_json(read(kDir + "templates.json"), "templates.json");
  for (const Value& e : entries.items())
    if (at(e, "name").text() == name) return &e;
  return nullptr;
}

std::vector<ChatMessage> messages_of(const Value& list) {
  std::vector<ChatMessage> out;
  for (const Value& m : list.items()) out.push_back({at(m, "role").text(), at(m, "content").text()});
  return out;
}

// "YYYY-MM-DD HH:MM:SS", local time, as the golden script fixed Python's clock.
std::time_t local_time(const std::string& s) {
  std::tm tm{};
  std::istringstream in(s);
  in >> std::get_time(&tm, "%Y-%m-%d %H:%M:%S");
  tm.tm_isdst = -1;
  return std::mktime(&tm);
}

// The template and options a templates.json entry describes. "chatml" is the
// built-in template, so the golden checks the constant, not just its file.
std::pair<ChatTemplate, ChatOptions> from_entry(const Value& e) {
  const std::string name = at(e, "name").text();
  ChatOptions options;
  if (const Value* vars = e.find("variables"))
    for (const auto& [k, v] : vars->entries()) options.variables.emplace_back(k, v);
  if (const Value* now = e.find("now")) options.settings.now = local_time(now->text());
  if (name == "chatml") return {ChatTemplate::builtin("chatml"), options};
  const std::string file = at(e, "file").text();
  return {ChatTemplate(read(kDir + file), file, {at(e, "bos_token").text(), at(e, "eos_token").text(), "", ""}),
          options};
}

// What a snippet sees: what render_jinja_template passes with conversations=[[]].
std::vector<Value::Entry> snippet_variables() {
  std::vector<Value::Entry> vars = {{"messages", Value::list({})},
                                    {"add_generation_prompt", false},
                                    {"tools", Value::none()},
                                    {"documents", Value::none()}};
  for (const auto& [k, v] : at(golden(), "snippet_variables").entries()) vars.emplace_back(k, v);
  return vars;
}

std::string render(const std::string& text, const jinja::RenderSettings& settings = {}) {
  return jinja::Template(text, "test.jinja").render(snippet_variables(), settings);
}

}  // namespace

class TestChatTemplate : public QObject {
  Q_OBJECT

 private slots:
  void golden_cases_data() {
    QTest::addColumn<int>("index");
    const auto& cases = at(golden(), "cases").items();
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const Value& c = cases[i];
      const std::string row = at(c, "template").text() + "/" + at(c, "conversation").text() +
                              (at(c, "add_generation_prompt").boolean() ? "/gen" : "");
      QTest::newRow(row.c_str()) << static_cast<int>(i);
    }
  }

  // Every family x conversation x generation prompt: the same text as
  // transformers, or the same refusal.
  void golden_cases() {
    QFETCH(int, index);
    const Value& c = at(golden(), "cases").items()[static_cast<std::size_t>(index)];
    const Value* entry = template_entry(at(c, "template").text());
    QVERIFY(entry);
    auto [tmpl, options] = from_entry(*entry);
    options.add_generation_prompt = at(c, "add_generation_prompt").boolean();
    const auto messages = messages_of(at(at(golden(), "conversations"), at(c, "conversation").text().c_str()));
    if (const Value* error = c.find("error")) {
      EXPECT_THROW_WITH(DataError, tmpl.render(messages, options), error->text());
      EXPECT_THROW_WITH(DataError, tmpl.render(messages, options), tmpl.source() + ": line ");
      return;
    }
    QCOMPARE(QString::fromStdString(tmpl.render(messages, options)), QString::fromStdString(at(c, "text").text()));
  }

  void snippets_data() {
    QTest::addColumn<int>("index");
    const auto& snippets = at(golden(), "snippets").items();
    for (std::size_t i = 0; i < snippets.size(); ++i)
      QTest::newRow(at(snippets[i], "name").text().c_str()) << static_cast<int>(i);
  }

  // One Jinja feature each, against jinja2 in transformers' environment.
  void snippets() {
    QFETCH(int, index);
    const Value& s = at(golden(), "snippets").items()[static_cast<std::size_t>(index)];
    const std::string text = at(s, "template").text();
    if (const Value* error = s.find("error")) {
      const std::string message = lwb::test::thrown<Error>([&] { render(text); });
      QVERIFY2(message.find("test.jinja: line ") != std::string::npos,
               ("jinja2 raised " + error->text() + "; we said: " + message).c_str());
      return;
    }
    QCOMPARE(QString::fromStdString(render(text)), QString::fromStdString(at(s, "text").text()));
  }

  void refusal_names_template_line_and_message() {
    const ChatTemplate gemma(read(kDir + "gemma2.jinja"), "gemma2.jinja", {"<bos>", "<eos>", "", ""});
    const std::vector<ChatMessage> system = {{"system", "Be brief."}, {"user", "Hi"}};
    EXPECT_THROW_WITH(DataError, gemma.render(system),
                      "gemma2.jinja: line 1: the template refused the conversation: System role not supported");
    const ChatTemplate llama(read(kDir + "llama3.1.jinja"), "llama3.1.jinja");
    // Tools and no user message: the raise sits on line 52 of the template.
    ChatOptions tools;
    tools.variables = {{"tools", Value::list({Value::dict({{"name", "f"}})})}};
    EXPECT_THROW_WITH(DataError, llama.render(std::vector<ChatMessage>{{"system", "Use the tools."}}, tools),
                      "llama3.1.jinja: line 52: the template refused the conversation: Cannot put tools in the first "
                      "user message when there's no first user message!");
  }

  void unsupported_constructs_data() {
    QTest::addColumn<QString>("text");
    QTest::addColumn<QString>("expected");
    QTest::newRow("include") << "a\n{% include 'x.jinja' %}" << "line 2: unsupported statement '{% include %}'";
    QTest::newRow("extends") << "{% extends 'base' %}" << "line 1: unsupported statement '{% extends %}'";
    QTest::newRow("call block") << "\n\n{% call f() %}x{% endcall %}" << "line 3: unsupported statement '{% call %}'";
    QTest::newRow("filter") << "{{ x }}\n\n{{ y | wordcount }}" << "line 3: unsupported filter 'wordcount'";
    QTest::newRow("test") << "{% if x is escaped %}{% endif %}" << "line 1: unsupported test 'escaped'";
    QTest::newRow("recursive loop") << "{% for x in y recursive %}{% endfor %}" << "line 1: unsupported recursive for loop";
    QTest::newRow("star args") << "{{ f(*args) }}" << "line 1: unsupported *args or **kwargs";
    QTest::newRow("filtered set") << "{% set x | upper %}a{% endset %}" << "line 1: unsupported filtered block set";
    QTest::newRow("named escape") << "{{ '\\N{BULLET}' }}" << "line 1: \\N{...} escapes are not supported";
    QTest::newRow("unknown statement") << "\n{% frobnicate %}" << "line 2: unknown statement 'frobnicate'";
    QTest::newRow("string formatting") << "\n{{ '%s' % 1 }}" << "line 2: unsupported: %-formatting of strings";
    QTest::newRow("list mutation") << "{{ [1].append(2) }}" << "line 1: 'list object' has no attribute 'append'";
    QTest::newRow("namespace in namespace")
        << "{% set ns = namespace() %}\n{% set ns.inner = namespace() %}"
        << "line 2: unsupported: a namespace or function stored in a namespace";
    QTest::newRow("non-string key") << "{{ {1: 2} }}" << "line 1: unsupported dict key of type 'int'";
    QTest::newRow("syntax") << "x\n{% if true %}\n{{ 1 + }}" << "line 3: expected an expression, got '}}'";
    QTest::newRow("unclosed") << "{% for x in y %}\n" << "line 1: unexpected end of template, expected 'endfor'";
    QTest::newRow("stray end") << "a\n\n{% endif %}" << "line 3: unexpected '{% endif %}'";
    QTest::newRow("break outside loop") << "{% break %}" << "line 1: 'break' outside a loop";
  }

  // Refused, never rendered differently, and the message says where and what.
  void unsupported_constructs() {
    QFETCH(QString, text);
    QFETCH(QString, expected);
    EXPECT_THROW_WITH(FormatError, render(text.toStdString()), "test.jinja: " + expected.toStdString());
  }

  void invalid_utf8_is_refused() {
    EXPECT_THROW_WITH(FormatError, render("a\xff"), "not valid UTF-8");
    const ChatTemplate chatml = ChatTemplate::builtin("chatml");
    EXPECT_THROW_WITH(DataError, chatml.render(std::vector<ChatMessage>{{"user", "ok"}, {"user", "\xc3"}}),
                      "message 2 is not valid UTF-8");
  }

  void unknown_builtin_names_the_field() {
    EXPECT_THROW_WITH(ConfigError, ChatTemplate::builtin("vicuna"), "model.chat_template: unknown built-in chat template 'vicuna'");
  }

  void limits_data() {
    QTest::addColumn<QString>("text");
    QTest::addColumn<QString>("expected");
    QTest::newRow("steps") << "{% for i in range(2000) %}{% for j in range(2000) %}{% endfor %}{% endfor %}"
                           << "steps";
    QTest::newRow("output") << "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}" << "bytes";
    QTest::newRow("string repetition") << "{{ 'x' * 100000000000 }}" << "bytes";
    QTest::newRow("list repetition") << "{{ [1, 2] * 100000000000 }}" << "bytes";
    QTest::newRow("range") << "{{ range(1000000000000) | length }}" << "bytes";
    QTest::newRow("doubling") << "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
                                 "{% endfor %}"
                              << "bytes";
    QTest::newRow("recursion") << "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}" << "macro calls nested";
    QTest::newRow("parentheses") << "{{ " + QString(1000, '(') + "1" + QString(1000, ')') + " }}" << "nested deeper";
    QTest::newRow("operator chain") << "{{ 1" + QString(" + 1").repeated(5000) + " }}" << "nested deeper";
    QTest::newRow("not chain") << "{{ " + QString("not ").repeated(5000) + "1 }}" << "nested deeper";
    QTest::newRow("blocks") << QString("{% if 1 %}").repeated(500) + QString("{% endif %}").repeated(500) << "nested deeper";
    QTest::newRow("value nesting")
        << "{% set ns = namespace(x=[]) %}{% for i in range(1000) %}{% set ns.x = [ns.x] %}{% endfor %}"
        << "nested deeper";
    QTest::newRow("json indent") << "{{ ([[[[[[[[1]]]]]]]] * 1000) | tojson(indent=1000) }}" << "bytes";
  }

  // Hostile templates end in an error naming the limit, fast.
  void limits() {
    QFETCH(QString, text);
    QFETCH(QString, expected);
    jinja::RenderSettings settings;
    settings.limits.max_steps = 1'000'000;
    settings.limits.max_bytes = 1 << 20;
    QElapsedTimer timer;
    timer.start();
    EXPECT_THROW_WITH(FormatError, render(text.toStdString(), settings), expected.toStdString());
    QVERIFY2(timer.elapsed() < 10000, "the limit took more than 10 s to trip");
  }

  void limits_leave_real_templates_alone() {
    // A 200-turn conversation through the largest template in the set.
    const ChatTemplate llama(read(kDir + "llama3.1.jinja"), "llama3.1.jinja", {"<|begin_of_text|>", "<|eot_id|>", "", ""});
    std::vector<ChatMessage> messages;
    for (int i = 0; i < 200; ++i) messages.push_back({i % 2 ? "assistant" : "user", std::string(500, 'a' + i % 26)});
    const std::string text = llama.render(messages);
    QVERIFY(text.size() > 200 * 500);
  }

  // The span of each assistant message is its content plus the end-of-turn
  // text, never the header the generation prompt writes.
  void assistant_spans_data() {
    QTest::addColumn<QString>("name");
    QTest::addColumn<QStringList>("spans");
    QTest::newRow("chatml") << "chatml"
                            << QStringList{"I'm doing great. How can I help you today?<|im_end|>\n", "2 + 2 = 4.<|im_end|>\n"};
    QTest::newRow("llama3") << "llama3"
                            << QStringList{"I'm doing great. How can I help you today?<|eot_id|>", "2 + 2 = 4.<|eot_id|>"};
    QTest::newRow("llama2") << "llama2"
                            << QStringList{" I'm doing great. How can I help you today? </s>", " 2 + 2 = 4. </s>"};
    QTest::newRow("gemma2") << "gemma2"
                            << QStringList{"I'm doing great. How can I help you today?<end_of_turn>\n",
                                           "2 + 2 = 4.<end_of_turn>\n"};
    QTest::newRow("qwen2.5") << "qwen2.5"
                             << QStringList{"I'm doing great. How can I help you today?<|im_end|>\n",
                                            "2 + 2 = 4.<|im_end|>\n"};
    QTest::newRow("zephyr") << "zephyr"
                            << QStringList{"I'm doing great. How can I help you today?</s>\n", "2 + 2 = 4.</s>\n"};
    QTest::newRow("mistral-v0.1") << "mistral-v0.1"
                                  << QStringList{"I'm doing great. How can I help you today?</s> ", "2 + 2 = 4.</s> "};
    // Phi-3 appends eos_token when a conversation ends without a generation
    // prompt: the first span runs into the "<|" both share with "<|user|>"
    // (no token lies wholly inside those two bytes), and the last one takes
    // the final eos.
    QTest::newRow("phi3") << "phi3"
                          << QStringList{"I'm doing great. How can I help you today?<|end|>\n<|",
                                         "2 + 2 = 4.<|end|>\n<|endoftext|>"};
  }

  void assistant_spans() {
    QFETCH(QString, name);
    QFETCH(QStringList, spans);
    auto [tmpl, options] = from_entry(*template_entry(name.toStdString()));
    const auto messages = messages_of(at(at(golden(), "conversations"), "multi_turn"));
    const RenderedChat r = tmpl.render_with_spans(messages, options);
    QCOMPARE(r.text, tmpl.render(messages, options));
    QCOMPARE(static_cast<int>(r.assistant.size()), spans.size());
    for (int i = 0; i < spans.size(); ++i) {
      const ChatSpan& s = r.assistant[static_cast<std::size_t>(i)];
      QCOMPARE(static_cast<int>(s.message), 2 * i + 1);
      QCOMPARE(QString::fromStdString(r.text.substr(s.begin, s.end - s.begin)), spans[i]);
    }
  }

  // Over every family and conversation the templates accept: spans are in
  // order, disjoint, begin where the content (as the template trims it)
  // begins, and hold it.
  void assistant_spans_hold_the_content() {
    int checked = 0;
    for (const Value& c : at(golden(), "cases").items()) {
      if (c.find("error") || at(c, "add_generation_prompt").boolean()) continue;
      const std::string name = at(c, "template").text();
      if (name == "mistral-nemo") continue;  // refused below
      auto [tmpl, options] = from_entry(*template_entry(name));
      const auto messages = messages_of(at(at(golden(), "conversations"), at(c, "conversation").text().c_str()));
      const RenderedChat r = tmpl.render_with_spans(messages, options);
      QCOMPARE(r.text, at(c, "text").text());
      std::size_t last_end = 0;
      for (const ChatSpan& s : r.assistant) {
        QVERIFY(s.begin >= last_end && s.end > s.begin && s.end <= r.text.size());
        const std::string& content = messages[s.message].content;
        const std::size_t first = content.find_first_not_of(" \n\t");
        const std::string core = content.substr(first, content.find_last_not_of(" \n\t") - first + 1);
        const std::string span = r.text.substr(s.begin, s.end - s.begin);
        QVERIFY2(span.find(core) != std::string::npos, (name + ": span '" + span + "' lacks '" + core + "'").c_str());
        QVERIFY2(span.find_first_not_of(" \n\t") == span.find(core),
                 (name + ": span '" + span + "' starts before the content").c_str());
        last_end = s.end;
        ++checked;
      }
    }
    QVERIFY(checked > 40);
  }

  void assistant_spans_refused_when_prefixes_differ() {
    // Mistral-Nemo writes the system prompt into the last user turn, so the
    // conversation before the first answer renders differently on its own.
    auto [tmpl, options] = from_entry(*template_entry("mistral-nemo"));
    const auto messages = messages_of(at(at(golden(), "conversations"), "system_multi_turn_answered"));
    EXPECT_THROW_WITH(FormatError, tmpl.render_with_spans(messages, options),
                      "mistral-nemo.jinja: assistant spans: message 3: the template renders the turns before it differently");
    // Without a system prompt its prefixes agree.
    const auto plain = messages_of(at(at(golden(), "conversations"), "multi_turn"));
    QCOMPARE(static_cast<int>(tmpl.render_with_spans(plain, options).assistant.size()), 2);
  }

  void hf_folder_tokenizer_config() {
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    // transformers 4: the template inside tokenizer_config.json; bos as an AddedToken object.
    write(dir.filePath("tokenizer_config.json"),
          R"({"bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": false}, "eos_token": "</s>",
              "chat_template": )" + jinja::to_json(Value(read(kDir + "llama2.jinja"))) + "}");
    const ChatTemplate t = load_hf_chat_template(dir.path().toStdString());
    QCOMPARE(t.tokens().bos, std::string("<s>"));
    QCOMPARE(t.tokens().eos, std::string("</s>"));
    QVERIFY(t.source().find("tokenizer_config.json: chat_template") != std::string::npos);
    const std::vector<ChatMessage> m = {{"user", "Hi"}, {"assistant", "Hello"}};
    QCOMPARE(t.render(m), std::string("<s>[INST] Hi [/INST] Hello </s>"));

    // transformers 5: chat_template.jinja beside it wins.
    write(dir.filePath("chat_template.jinja"), read(kDir + "chatml.jinja"));
    const ChatTemplate j = load_hf_chat_template(dir.path().toStdString());
    QVERIFY(j.source().find("chat_template.jinja") != std::string::npos);
    QCOMPARE(j.tokens().bos, std::string("<s>"));
    QCOMPARE(j.render(m), std::string("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n"));
  }

  void hf_folder_named_templates() {
    QTemporaryDir dir;
    write(dir.filePath("tokenizer_config.json"),
          R"({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D{{ messages | length }}"}]})");
    QCOMPARE(load_hf_chat_template(dir.path().toStdString()).render(std::vector<ChatMessage>{{"user", "x"}}), std::string("D1"));
    write(dir.filePath("tokenizer_config.json"), R"({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "rag", "template": "R"}]})");
    EXPECT_THROW_WITH(FormatError, load_hf_chat_template(dir.path().toStdString()), "no template named \"default\" among: tool_use, rag");
  }

  void hf_folder_errors() {
    QTemporaryDir dir;
    EXPECT_THROW_WITH(FormatError, load_hf_chat_template(dir.path().toStdString()), "choose a built-in one such as chatml");
    write(dir.filePath("tokenizer_config.json"), R"({"eos_token": "</s>"})");
    EXPECT_THROW_WITH(FormatError, load_hf_chat_template(dir.path().toStdString()), "no chat template");
    write(dir.filePath("tokenizer_config.json"), R"({"chat_template": "{% if %}"})");
    EXPECT_THROW_WITH(FormatError, load_hf_chat_template(dir.path().toStdString()),
                      "tokenizer_config.json: chat_template: line 1: expected an expression");
    write(dir.filePath("tokenizer_config.json"), "{not json");
    EXPECT_THROW_WITH(FormatError, load_hf_chat_template(dir.path().toStdString()), "tokenizer_config.json: not valid JSON");
    write(dir.filePath("tokenizer_config.json"),
          R"({"chat_template": "x", "extra": )" + std::string(100000, '[') + std::string(100000, ']') + "}");
    EXPECT_THROW_WITH(FormatError, load_hf_chat_template(dir.path().toStdString()),
                      "tokenizer_config.json: JSON nested deeper than 64 levels");
  }
};

QTEST_APPLESS_MAIN(TestChatTemplate)
#include "test_chat_template.moc"
