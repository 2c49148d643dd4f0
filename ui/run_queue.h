#pragma once
// Experiments waiting to run one after another in the window: what Start,
// "Add to queue", a sweep over rank, alpha and method, and the comparison
// presets put there, with what became of each (its run id and end). The
// main window runs the next waiting item when it is idle and the queue is
// running; a pretraining the next item needs is queued before it.
#include <QObject>
#include <QString>
#include <QStringList>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/train/experiment_config.h"

namespace lwb::ui {

struct QueueItem {
  enum class State { Waiting, Running, Finished, Stopped, Failed };
  qint64 key = 0;  // unique in the queue
  QString label;
  ExperimentConfig config;
  QString resume_state;    // a saved state to continue from, or empty
  qint64 parent_run = 0;   // the run it resumes (0: none)
  State state = State::Waiting;
  qint64 run_id = 0;       // once started
  QString outcome;         // how it ended, for people
};
QString queue_state_name(QueueItem::State s);  // "waiting", "running", ...

// ranks x alphas x methods, each a copy of `base` named
// "<name>-<method>-r<rank>-a<alpha>"; an empty list keeps the base's value.
// Configs that do not validate are left out, with a line each in `refused`.
std::vector<ExperimentConfig> sweep_configs(const ExperimentConfig& base, const std::vector<int>& ranks,
                                            const std::vector<double>& alphas, const QStringList& methods,
                                            QStringList* refused = nullptr);

class RunQueue : public QObject {
  Q_OBJECT
 public:
  explicit RunQueue(QObject* parent = nullptr) : QObject(parent) {}

  qint64 add(const ExperimentConfig& config, const QString& label = {}, const QString& resume_state = {},
             qint64 parent_run = 0);
  // Before `before` (the first waiting position when 0).
  qint64 insert_before(qint64 before, const ExperimentConfig& config, const QString& label = {},
                       const QString& resume_state = {}, qint64 parent_run = 0);
  // The entries of a comparison preset (core/train/compare.h), in its order.
  int add_comparison(const std::string& preset);
  void remove(qint64 key);  // not while it runs
  void move(qint64 key, int delta);
  void clear_done();

  const std::vector<QueueItem>& items() const { return items_; }
  const QueueItem* item(qint64 key) const;
  // The first waiting item, or nullptr.
  const QueueItem* next_waiting() const;
  int waiting() const;
  void set_running(qint64 key, qint64 run_id);
  void set_run_id(qint64 key, qint64 run_id);
  void set_ended(qint64 key, QueueItem::State state, const QString& outcome);

 signals:
  void changed();

 private:
  QueueItem* find(qint64 key);
  QueueItem make(const ExperimentConfig& config, const QString& label, const QString& resume_state, qint64 parent_run);
  std::vector<QueueItem> items_;
  qint64 next_key_ = 1;
};

}  // namespace lwb::ui
