// The Chat tab driven as a user would (offscreen): the tiny base, a trained
// adapter and a stored composition of it answer side by side, streamed into their columns with
// tokens/s, and the answers equal what core/infer gives directly for the
// same greedy settings, over two turns of a conversation, and for a seeded
// sample; the rendered template; Copy; Ctrl+Enter; errors shown in the view
// (a chat longer than the context, an adapter of another base); Stop on a long generation ends it promptly, the
// window's event loop keeps running meanwhile, and the view takes the next
// prompt.
#include <QClipboard>
#include <QCheckBox>
#include <QComboBox>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTimer>
#include <QtTest>
#include <algorithm>

#include "core/common/paths.h"
#include "core/infer/adapter_set.h"
#include "core/infer/generator.h"
#include "core/model/checkpoint.h"
#include "core/source/model_source.h"
#include "core/store/store.h"
#include "core/train/trainer.h"
#include "ui/chat_view.h"
#include "ui/chat_worker.h"

using namespace lwb;
using namespace lwb::ui;
namespace fs = std::filesystem;

namespace {

constexpr int kTurnTimeoutMs = 300000;

bool wait_for_turn(ChatView& view) {
  if (!view.busy()) return true;
  QSignalSpy done(&view, &ChatView::turn_finished);
  return done.wait(kTurnTimeoutMs);
}

// What core/infer answers on its own: the base (with `adapter`), a fresh
// generator with the Chat tab's context (at most 2048 positions), the chat
// rendered as the Chat tab renders it, greedy.
std::string core_answer(const std::vector<data::ChatMessage>& messages, const AdapterState* adapter, int max_new,
                        const std::string& base_spec = "tiny", const infer::SamplingConfig& sampling = {}) {
  SourceEnvironment env;
  env.data_dir = user_data_dir();
  LoadedBase base;
  load_base(base_spec, env, base);
  const std::unique_ptr<data::Tokenizer> tokenizer = load_tokenizer(base.source);
  std::optional<data::ChatTemplate> chat = load_chat_template(base.source, "auto", *tokenizer);
  if (!chat) chat = data::ChatTemplate::builtin("chatml");
  data::ChatOptions o;
  o.add_generation_prompt = true;
  const std::vector<std::int32_t> prompt =
      tokenizer->encode(chat->render(messages, o), {.add_special = false, .parse_special = true});
  MemoryLedger ledger;
  infer::Decoder decoder(*base.model, {1, std::min<std::int64_t>(base.model->config().max_seq, 2048), 0}, ledger);
  std::optional<infer::AdapterSet> set;
  if (adapter) set.emplace(decoder, *adapter, "adapter", base.fingerprint);
  infer::Generator gen(decoder, *tokenizer);
  infer::GenerateOptions options;
  options.max_new_tokens = max_new;
  options.sampling = sampling;
  options.adapter = set ? &*set : nullptr;
  return gen.generate(std::vector<std::vector<std::int32_t>>{prompt}, options)[0].text;
}

}  // namespace

class TestUiChat : public QObject {
  Q_OBJECT
  QTemporaryDir dir;
  std::int64_t adapter_id = 0;
  QString long_base;  // a random base with a long context, for long generations

  fs::path db() const { return fs::path(dir.path().toStdString()) / "chat.sqlite3"; }

  // Greedy, max_new tokens, the given system prompt, and one prompt sent.
  static void send(ChatView& view, const QString& system, const QString& prompt, int max_new) {
    view.greedy_box()->setChecked(true);
    view.max_new_box()->setValue(max_new);
    view.system_edit()->setPlainText(system);
    view.prompt_edit()->setPlainText(prompt);
    QVERIFY(view.send());
    QVERIFY(view.busy());
    QVERIFY(!view.send_button()->isEnabled());
  }

 private slots:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);
    QVERIFY(dir.isValid());
    TrainerEnvironment env;
    env.data_dir = user_data_dir();
    ensure_base_model("tiny", env);
    ExperimentConfig c = experiment_preset("tiny-lora");
    c.name = "chat-lora";
    c.data.n_train = 300;
    c.data.n_heldout = 20;
    c.train.steps = 40;
    c.train.eval_every = 0;
    c.train.eval_examples = 20;
    c.schedule.warmup_steps = 5;
    Trainer t(c, env);
    TrainerSink none;
    const RunResult r = t.run(none);
    QVERIFY2(r.status == RunStatus::Finished, r.error.c_str());
    Store store(db());
    adapter_id = store.save_adapter("chat-lora", std::nullopt, t.adapter_state(), c.data.task, r.final_eval.loss,
                                    r.final_eval.accuracy);
    // A stored composition of that one adapter at weight 1: the adapter again.
    Composition comp;
    comp.name = "chat-comp";
    comp.mode = "cat";
    comp.optimizer = "none";
    comp.members = {{.adapter_id = adapter_id, .weight = 1.0}};
    store.save_composition(comp);
    // The same shapes, recorded as trained on another base.
    AdapterState other = t.adapter_state();
    other.base_fingerprint = "0123456789abcdef";
    store.save_adapter("other-base", std::nullopt, other, c.data.task, r.final_eval.loss, r.final_eval.accuracy);

    CpuBackend be;
    MemoryLedger ledger;
    ModelConfig mc = model_preset("tiny");
    mc.hidden = 256;
    mc.intermediate = 768;
    mc.layers = 6;
    mc.max_seq = 4096;
    Model m(mc, Model::Mode::Frozen);
    m.materialize(be, ledger, 1, 1);
    m.init_base_weights(3);
    long_base = dir.filePath("long-base.safetensors");
    save_base_checkpoint(m, long_base.toStdString());
  }

  // Base and adapter side by side, streamed, equal to core/infer's answers;
  // a second turn continues each column's own conversation.
  void sideBySideAsCore() {
    ChatView view(db());
    view.resize(1280, 720);
    view.show();
    view.base_box()->setCurrentText("tiny");
    QVERIFY(view.choose_adapter(0, "chat-lora"));
    QVERIFY(view.choose_adapter(1, "chat-comp (composition)"));
    QCOMPARE(view.columns(), 3);
    QVERIFY(view.column_title(1).contains("chat-lora"));

    // Every streamed piece is seen by the view as it arrives: the column's
    // answer grows, token by token, with its count and rate shown.
    auto* worker = view.findChild<ChatWorker*>();
    QVERIFY(worker);
    std::vector<qsizetype> lengths[3];
    bool rate_shown = false;
    connect(worker, &ChatWorker::token, &view, [&](int column, const QString&, qint64 tokens, double) {
      lengths[column].push_back(view.answer(column).size());
      rate_shown |= tokens > 2 && view.rate_label(column)->text().contains("tokens/s");
    });
    send(view, "Be brief.", "hi", 12);
    QVERIFY(wait_for_turn(view));
    QVERIFY2(view.status_label()->styleSheet().isEmpty(), qPrintable(view.status_label()->text()));
    QVERIFY(view.send_button()->isEnabled());
    for (int c = 0; c < 3; ++c) {
      QVERIFY(lengths[c].size() >= 12);  // one event per token, and the end
      QVERIFY(std::is_sorted(lengths[c].begin(), lengths[c].end()));
      QVERIFY(lengths[c].front() < lengths[c].back());
      QVERIFY2(view.rate_label(c)->text().contains("12 tokens"), qPrintable(view.rate_label(c)->text()));
    }
    QVERIFY(rate_shown);

    Store store(db());
    const AdapterState adapter = store.load_adapter(adapter_id);
    const std::vector<data::ChatMessage> turn1{{"system", "Be brief."}, {"user", "hi"}};
    const std::string base1 = core_answer(turn1, nullptr, 12), adapted1 = core_answer(turn1, &adapter, 12);
    QVERIFY2(base1 != adapted1, "the adapter does not change the tiny base's answer; the test cannot tell the columns apart");
    QCOMPARE(view.answer(0).toStdString(), base1);
    QCOMPARE(view.answer(1).toStdString(), adapted1);
    QCOMPARE(view.answer(2).toStdString(), adapted1);  // the composition of the adapter alone
    QVERIFY(view.transcript(1).contains("You: hi"));
    QVERIFY(view.transcript(1).endsWith(QString::fromStdString(adapted1)));

    // The rendered chat template: the system prompt and the user turn in the template's markup.
    QVERIFY(!view.template_view()->isVisible());
    view.template_button()->click();
    QVERIFY(view.template_view()->isVisible());
    QVERIFY(view.template_view()->toPlainText().contains("<|im_start|>system\nBe brief.<|im_end|>"));
    // Both columns' first turns render alike: shown once, under both titles.
    QCOMPARE(view.template_view()->toPlainText().count("<|im_start|>system"), 1);
    QVERIFY(view.template_view()->toPlainText().contains("Base: tiny, chat-lora, chat-comp (composition)"));

    // Copy puts the column's answer on the clipboard.
    view.copy_button(1)->click();
    QCOMPARE(QApplication::clipboard()->text(), QString::fromStdString(adapted1));

    // Clear, then two turns without a system prompt (the tiny model's context is 128 bytes).
    view.clear_button()->click();
    QVERIFY(view.transcript(0).isEmpty());
    send(view, "", "hi", 8);
    QVERIFY(wait_for_turn(view));
    const std::string base_a = view.answer(0).toStdString(), adapted_a = view.answer(1).toStdString();
    send(view, "", "ok", 8);
    QVERIFY(wait_for_turn(view));
    QVERIFY2(view.status_label()->styleSheet().isEmpty(), qPrintable(view.status_label()->text()));
    const std::vector<data::ChatMessage> base_turns{{"user", "hi"}, {"assistant", base_a}, {"user", "ok"}};
    const std::vector<data::ChatMessage> adapted_turns{{"user", "hi"}, {"assistant", adapted_a}, {"user", "ok"}};
    QCOMPARE(view.answer(0).toStdString(), core_answer(base_turns, nullptr, 8));
    QCOMPARE(view.answer(1).toStdString(), core_answer(adapted_turns, &adapter, 8));
    QVERIFY(view.transcript(0).contains("You: hi") && view.transcript(0).contains("You: ok"));
    // The second turn ran on the first turn's cache: the rate's tooltip says how much was reused.
    QVERIFY2(!view.rate_label(0)->toolTip().contains("(0 reused"), qPrintable(view.rate_label(0)->toolTip()));
  }

  // Errors are shown in the view, which takes the next prompt.
  void errorsShown() {
    ChatView view(db());
    view.show();
    view.base_box()->setCurrentText("tiny");
    send(view, "", QString(300, 'a'), 8);
    QVERIFY(wait_for_turn(view));
    QVERIFY(!view.status_label()->styleSheet().isEmpty());
    qInfo("shown: %s", qPrintable(view.status_label()->text()));
    QVERIFY2(view.status_label()->text().contains("longer than the context of 128 tokens"),
             qPrintable(view.status_label()->text()));
    QVERIFY(view.send_button()->isEnabled());
    QCOMPARE(view.prompt_edit()->toPlainText(), QString(300, 'a'));  // given back

    QVERIFY(view.choose_adapter(0, "other-base"));
    send(view, "", "hi", 4);
    QVERIFY(wait_for_turn(view));
    qInfo("shown: %s", qPrintable(view.status_label()->text()));
    QVERIFY2(view.status_label()->text().contains("other-base") &&
                 view.status_label()->text().contains("another base"),
             qPrintable(view.status_label()->text()));

    view.adapter_box(0)->setCurrentIndex(0);
    QCOMPARE(view.columns(), 1);
    view.max_new_box()->setValue(4);
    view.prompt_edit()->setPlainText("hi");
    QTest::keyClick(view.prompt_edit(), Qt::Key_Return, Qt::ControlModifier);  // Ctrl+Enter sends
    QVERIFY(view.busy());
    QVERIFY(wait_for_turn(view));
    QVERIFY2(view.status_label()->styleSheet().isEmpty(), qPrintable(view.status_label()->text()));
    QVERIFY(view.rate_label(0)->text().contains("4 tokens"));
  }

  // The sampling settings reach the generator: a seeded sample equals core/infer's.
  void samplingAsCore() {
    ChatView view(db());
    view.show();
    view.base_box()->setCurrentText("tiny");
    view.greedy_box()->setChecked(false);
    QVERIFY(view.temperature_box()->isEnabled());
    view.temperature_box()->setValue(1.5);
    view.seed_box()->setValue(7);
    view.max_new_box()->setValue(16);
    view.prompt_edit()->setPlainText("hi");
    QVERIFY(view.send());
    QVERIFY(wait_for_turn(view));
    infer::SamplingConfig sampling;
    sampling.greedy = false;
    sampling.temperature = 1.5;
    sampling.top_p = 0.95;  // the view's other defaults
    sampling.top_k = 40;
    sampling.seed = 7;
    const std::string sampled = core_answer({{"user", "hi"}}, nullptr, 16, "tiny", sampling);
    QCOMPARE(view.answer(0).toStdString(), sampled);
    QVERIFY(sampled != core_answer({{"user", "hi"}}, nullptr, 16));  // not the greedy answer
  }

  // The real SmolLM2-135M-Instruct GGUF (LWB_SMOLLM2_GGUF), when present:
  // its own chat template and tokenizer, the same answer as core/infer.
  void smollm2WhenPresent() {
    const QString gguf = qEnvironmentVariable("LWB_SMOLLM2_GGUF");
    if (gguf.isEmpty() || !QFileInfo::exists(gguf))
      QSKIP("set LWB_SMOLLM2_GGUF to SmolLM2-135M-Instruct's GGUF (./run.sh fetch smollm2) to run this");
    ChatView view(db());
    view.show();
    view.base_box()->setCurrentText(gguf);
    send(view, "You are a concise assistant.", "What is the capital of France?", 24);
    QVERIFY(wait_for_turn(view));
    QVERIFY2(view.status_label()->text().contains("the model's own chat template"), qPrintable(view.status_label()->text()));
    const std::vector<data::ChatMessage> turn{{"system", "You are a concise assistant."},
                                              {"user", "What is the capital of France?"}};
    const std::string expected = core_answer(turn, nullptr, 24, gguf.toStdString());
    qInfo("SmolLM2 answered: %s (%s)", expected.c_str(), qPrintable(view.rate_label(0)->text()));
    QVERIFY(expected.find("Paris") != std::string::npos);
    QCOMPARE(view.answer(0).toStdString(), expected);
  }

  // Stop ends a long generation promptly; the event loop runs all along.
  void stopAndStayResponsive() {
    ChatView view(db());
    view.show();
    view.base_box()->setCurrentText(long_base);
    auto* worker = view.findChild<ChatWorker*>();
    qint64 streamed = 0;
    connect(worker, &ChatWorker::token, &view, [&](int, const QString&, qint64 tokens, double) { streamed = tokens; });
    QElapsedTimer clock;
    qint64 last_tick = 0, worst_gap = 0;
    QTimer ticker;
    connect(&ticker, &QTimer::timeout, [&] {
      worst_gap = std::max(worst_gap, clock.elapsed() - last_tick);
      last_tick = clock.elapsed();
    });
    send(view, "", "Tell me a long story.", 4000);
    clock.start();
    ticker.start(10);
    QTRY_VERIFY_WITH_TIMEOUT(streamed >= 20, kTurnTimeoutMs);
    QVERIFY2(view.busy(), "the long generation ended by itself before Stop");
    QVERIFY(view.stop_button()->isEnabled());
    QElapsedTimer stopping;
    stopping.start();
    view.stop_button()->click();
    QVERIFY(wait_for_turn(view));
    const qint64 stop_ms = stopping.elapsed();
    ticker.stop();
    qInfo("stopped after %lld tokens in %lld ms; the event loop's longest gap while generating: %lld ms",
          static_cast<long long>(streamed), static_cast<long long>(stop_ms), static_cast<long long>(worst_gap));
    QVERIFY2(stop_ms < 2000, "Stop took too long");
    QVERIFY2(worst_gap < 1000, "the event loop stalled while generating");
    QVERIFY2(view.rate_label(0)->text().contains("stopped"), qPrintable(view.rate_label(0)->text()));
    QVERIFY(view.send_button()->isEnabled() && !view.stop_button()->isEnabled());

    send(view, "", "Again.", 5);
    QVERIFY(wait_for_turn(view));
    QVERIFY2(view.rate_label(0)->text().contains("5 tokens"), qPrintable(view.rate_label(0)->text()));
  }
};

QTEST_MAIN(TestUiChat)
#include "test_ui_chat.moc"
