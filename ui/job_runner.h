#pragma once
// One background job at a time on its own QThread (PlotJuggler's
// fetch_worker pattern): the job runs on the worker thread and reports back
// by queued signals of its owner; cancellation is an atomic the GUI thread
// sets directly (a slot would wait behind the busy job). failed() carries an
// exception's message; done() follows every job, on the GUI thread.
#include <QObject>
#include <QString>
#include <QThread>
#include <atomic>
#include <functional>

namespace lwb::ui {

class JobRunner : public QObject {
  Q_OBJECT
 public:
  explicit JobRunner(QObject* parent = nullptr);
  ~JobRunner() override;  // cancels the job and waits for it

  // false (and nothing started) while another job runs.
  bool start(std::function<void()> job);
  void cancel() { cancel_ = true; }
  const std::atomic<bool>* cancel_flag() const { return &cancel_; }
  bool cancelled() const { return cancel_; }
  bool busy() const { return busy_; }

 signals:
  void failed(QString message);
  void done();

 private:
  QThread thread_;
  std::function<void()> job_;
  std::atomic<bool> cancel_{false};
  bool busy_ = false;  // GUI thread only
};

}  // namespace lwb::ui
