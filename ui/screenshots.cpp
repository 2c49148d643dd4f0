#include "ui/screenshots.h"

#include <QApplication>
#include <QComboBox>
#include <QDir>
#include <QElapsedTimer>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScrollArea>
#include <QSpinBox>
#include <QTabWidget>
#include <QThread>
#include <algorithm>
#include <cstdio>
#include <functional>

#include "core/source/downloads.h"
#include "core/source/model_source.h"
#include "core/store/store.h"
#include "ui/adapter_library.h"
#include "ui/chat_view.h"
#include "ui/compose_canvas.h"
#include "ui/comparison_view.h"
#include "ui/compose_view.h"
#include "ui/experiment_form.h"
#include "ui/library_view.h"
#include "ui/loss_plot.h"
#include "ui/memory_view.h"
#include "ui/queue_view.h"
#include "ui/run_chart.h"
#include "ui/main_window.h"
#include "ui/planner_view.h"
#include "ui/predict_view.h"
#include "ui/run_queue.h"
#include "ui/runs_view.h"
#include "ui/samples_view.h"
#include "ui/training_worker.h"

namespace lwb::ui {

namespace {

// The sizes every view is looked at in: a laptop and a desktop screen.
constexpr QSize kSizes[] = {{1280, 720}, {1920, 1080}};

bool wait_for(const std::function<bool()>& done, int timeout_ms) {
  QElapsedTimer clock;
  clock.start();
  while (!done() && clock.elapsed() < timeout_ms) {
    QApplication::processEvents(QEventLoop::AllEvents, 50);
    QThread::msleep(20);
  }
  return done();
}

}  // namespace

// The demo experiment (pretraining its base first when it is not cached),
// then a short AdaLoRA run and a short full fine-tuning from the queue, a
// resize in the library and a two-member composition, so that every tab has
// something to show; each tab saved at both sizes as <name>-<w>x<h>.png.
int run_screenshots(int argc, char** argv, const QString& dir, int steps) {
  QApplication app(argc, argv);
  QApplication::setApplicationName("lora-workbench");
  QDir().mkpath(dir);
  MainWindow window;
  // With samples during training, for the Monitor's Samples tab.
  ExperimentConfig demo = experiment_preset("demo");
  demo.train.samples = 4;
  demo.train.sample_every = 20;
  window.form()->set_config(demo);
  window.resize(kSizes[0]);
  window.show();
  int failures = 0, finished = 0;
  QObject::connect(&window, &MainWindow::run_finished, [&] { ++finished; });
  auto tab = [&](QWidget* w) { return window.tabs()->indexOf(w); };
  auto grab = [&](int index, const QString& name) {
    window.tabs()->setCurrentIndex(index);
    for (const QSize& size : kSizes) {
      window.resize(size);
      wait_for([] { return false; }, 150);  // layouts settle, queued replots run
      window.loss_plot()->refresh();
      QApplication::processEvents();
      const QString file = QDir(dir).filePath(QString("%1-%2x%3.png").arg(name).arg(size.width()).arg(size.height()));
      const bool ok = window.grab().save(file);
      std::printf("%s %s\n", ok ? "saved" : "could not save", file.toLocal8Bit().constData());
      failures += !ok;
    }
    window.resize(kSizes[0]);
  };
  auto note = [](const char* what) { std::printf("%s\n", what); };

  wait_for([] { return false; }, 300);
  if (qEnvironmentVariableIsSet("LWB_DEBUG_SIZES")) {
    std::function<void(QWidget*, int)> dump = [&](QWidget* w, int depth) {
      if (depth > 4) return;
      const QSize m = w->minimumSizeHint().expandedTo(w->minimumSize());
      if (m.width() > 500 || m.height() > 300)
        std::printf("%*s%s %s min %dx%d\n", depth * 2, "", w->metaObject()->className(), qPrintable(w->objectName()), m.width(), m.height());
      for (QObject* c : w->children())
        if (auto* cw = qobject_cast<QWidget*>(c); cw && !cw->isWindow() && !cw->isHidden()) dump(cw, depth + 1);
    };
    for (int i = 0; i < window.tabs()->count(); ++i) {
      std::printf("TAB %s\n", qPrintable(window.tabs()->tabText(i)));
      dump(window.tabs()->widget(i), 0);
    }
    return 0;
  }
  grab(0, "setup");
  {
    // The form with a problem: its field outlined, the message in the form's labels.
    const ExperimentConfig demo = window.form()->config();
    window.form()->set_field("adapter.method", "adalora");
    window.form()->set_field("adapter.adalora.tinit", "1000");
    window.form()->show_field("adapter.adalora.tinit");
    grab(0, "setup-problem");
    // VeRA's own fields: the shared projections' key and the d vector's start.
    window.form()->set_field("adapter.method", "vera");
    wait_for([] { return false; }, 150);  // its fields' page is laid out before it is scrolled to
    window.form()->show_field("adapter.vera.projection_prng_key");
    grab(0, "setup-vera");
    window.form()->set_config(demo);
    window.form()->scroll_area()->ensureVisible(0, 0);
  }
  const bool pretrain_first = MainWindow::needs_pretraining(window.form()->config());
  window.start_button()->click();
  if (pretrain_first) {
    note("pretraining the base first, as a run of its own");
    wait_for([&] { return window.loss_plot()->train_points() >= 60; }, 600000);
    grab(1, "monitor-pretraining");
    wait_for([&] { return finished >= 1; }, 3600000);
  }
  const int base_runs = finished;
  wait_for([&] { return window.loss_plot()->train_points() >= steps || (finished > base_runs && !window.training()); },
           1800000);
  grab(1, "monitor");
  QTabWidget* below = window.findChild<QTabWidget*>("monitor_below");
  if (below) below->setCurrentWidget(window.samples_view());
  grab(1, "monitor-samples");
  grab(tab(window.memory_view()), "memory");
  window.stop_button()->click();
  wait_for([&] { return finished > base_runs; }, 600000);
  grab(tab(window.memory_view()), "memory-ended");

  // A short AdaLoRA run and a short full fine-tuning, one after the other.
  ExperimentConfig ada = experiment_preset("demo");
  ada.name = "demo-adalora";
  ada.adapter.method = "adalora";
  ada.adapter.r = 12;
  ada.adapter.set_option("adalora.target_r", 4);
  ada.adapter.set_option("adalora.tinit", 10);
  ada.adapter.set_option("adalora.tfinal", 20);
  ada.adapter.set_option("adalora.delta_t", 5);
  ada.train.steps = 80;
  ada.train.eval_every = 20;
  ExperimentConfig full = experiment_preset("tiny-full");
  full.name = "demo-full";
  full.data.task = "uppercase";
  full.train.steps = 40;
  full.train.eval_every = 20;
  window.queue()->add(ada);
  window.queue()->add(full);
  grab(tab(window.queue_view()), "queue");
  // Each shown at its end: the queue pauses after the AdaLoRA run, then runs the rest.
  const int before_queue = finished;
  window.run_queue();
  window.pause_queue();
  wait_for([&] { return finished >= before_queue + 1 && !window.training(); }, 1800000);
  if (below) below->setCurrentIndex(0);
  grab(1, "monitor-adalora");
  window.run_queue();
  wait_for([&] { return finished >= before_queue + 2 && !window.training(); }, 1800000);
  if (below) below->setCurrentIndex(1);
  grab(1, "monitor-layers");

  window.runs_view()->refresh();
  std::vector<std::int64_t> all;
  for (const RunRow& r : Store(Store::default_path()).list_runs()) all.push_back(r.id);
  window.runs_view()->overlay(all);
  grab(tab(window.runs_view()), "runs");
  window.runs_view()->set_x_axis(XAxis::RelativeTime);
  window.runs_view()->chart(1)->set_metric(RunMetric::ExactMatch);
  grab(tab(window.runs_view()), "runs-time");
  // The demo run's samples, then Evaluate & Predict on its held-out split.
  std::int64_t demo_id = 0;
  for (const RunRow& r : Store(Store::default_path()).list_runs())
    if (r.experiment == demo.name) demo_id = r.id;
  window.runs_view()->select_runs({demo_id});
  window.runs_view()->pages()->setCurrentWidget(window.runs_view()->samples_view());
  grab(tab(window.runs_view()), "runs-samples");
  PredictView* predict = window.runs_view()->predict_view();
  window.runs_view()->pages()->setCurrentWidget(predict);
  predict->count_box()->setValue(40);
  if (predict->start()) wait_for([&] { return !predict->busy(); }, 1800000);
  grab(tab(window.runs_view()), "runs-predict");
  window.runs_view()->pages()->setCurrentIndex(0);
  grab(tab(window.queue_view()), "queue-done");
  // Clone into setup: the preset box names the run the settings came from.
  window.tabs()->setCurrentWidget(window.runs_view());
  window.runs_view()->select_runs({demo_id});
  window.runs_view()->findChild<QPushButton*>("runs_clone")->click();
  grab(0, "setup-clone");

  // A resize in the library, then its energy plot.
  LibraryView* library = window.library_view();
  library->refresh();
  const std::vector<AdapterRow> adapters = Store(Store::default_path()).list_adapters();
  std::int64_t lora = 0, adalora = 0;
  for (const AdapterRow& a : adapters) (a.variant == "adalora" ? adalora : lora) = a.id;
  if (lora) {
    library->select_adapters({lora});
    if (library->resize(lora, 4, "demo-r4")) wait_for([&] { return !library->busy(); }, 600000);
    library->select_adapters({lora});
  }
  grab(tab(library), "library");

  // Two adapters composed by concatenation, weights on the edges.
  ComposeView* compose = window.compose_view();
  compose->library()->refresh();
  compose->mode_box()->setCurrentText("cat");
  if (lora) compose->add_adapter(lora, QPointF(0, 0));
  if (adalora) compose->add_adapter(adalora, QPointF(0, 140));
  if (compose->members() == 2) {
    compose->canvas()->set_weight(0, 0.8);
    compose->canvas()->set_weight(1, -0.35);
  }
  window.tabs()->setCurrentIndex(tab(compose));
  compose->canvas()->show_all();
  grab(tab(compose), "compose");
  // The same two searched and evaluated over three seeds: the scores with
  // their intervals, the error bars and the paired verdicts.
  if (compose->members() == 2) {
    compose->budget_box()->setValue(6);
    compose->seeds_box()->setValue(3);
    if (compose->start_search()) wait_for([&] { return !compose->busy(); }, 1800000);
    compose->canvas()->show_all();
    grab(tab(compose), "compose-seeds");
  }

  // The Chat tab: the base and the demo's two adapters answer one prompt side
  // by side; then SmolLM2 with an adapter trained on it, when the data folder
  // has both (LWB_DATA_DIR).
  ChatView* chat = window.chat_view();
  auto chat_turn = [&](const QString& base, const std::vector<std::int64_t>& ids, const QString& system,
                       const QString& prompt, const char* name) {
    window.tabs()->setCurrentIndex(tab(chat));
    chat->refresh();
    chat->base_box()->setCurrentText(base);
    for (int slot = 0; slot < ChatView::kMaxAdapters; ++slot) chat->adapter_box(slot)->setCurrentIndex(0);
    int slot = 0;
    for (const std::int64_t id : ids)
      for (const AdapterRow& a : adapters)
        if (a.id == id && id) chat->choose_adapter(slot++, QString::fromStdString(a.name));
    chat->max_new_box()->setValue(40);
    chat->system_edit()->setPlainText(system);
    chat->prompt_edit()->setPlainText(prompt);
    if (chat->send()) wait_for([&] { return !chat->busy(); }, 600000);
    chat->template_button()->setChecked(true);
    grab(tab(chat), name);
    chat->template_button()->setChecked(false);
  };
  // The tiny model's context is 128 bytes: no system prompt there.
  chat_turn("tiny", {lora, adalora}, "", "uppercase: hello world", "chat");
  const std::vector<std::string> presets = available_model_presets(SourceEnvironment{}.data_folder());
  if (std::find(presets.begin(), presets.end(), "smollm2-135m") != presets.end()) {
    std::int64_t smollm2 = 0;
    // The stored base is the resolved file ("SmolLM2-135M-Instruct.Q4_1.gguf"), so match without case.
    for (const AdapterRow& a : adapters)
      if (QString::fromStdString(a.base_model).contains("smollm2", Qt::CaseInsensitive)) smollm2 = a.id;
    if (smollm2)
      chat_turn("smollm2-135m", {smollm2}, "You are a concise assistant.", "Name three primary colours.",
                "chat-smollm2");
  }

  grab(tab(window.planner_view()), "planner-tiny");
  window.planner_view()->lisa_button()->click();
  wait_for([] { return false; }, 300);
  grab(tab(window.planner_view()), "planner-llama2-7b");

  // The comparison views, each on the newest stored comparison or study (a
  // data folder that has some: LWB_DATA_DIR), else empty.
  for (auto [view, name] : {std::pair{window.compare_view(), "compare"}, std::pair{window.studies_view(), "studies"}}) {
    view->refresh();
    if (view->history()->count() > 0) view->history()->setCurrentRow(0);
    grab(tab(view), name);
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace lwb::ui
