#pragma once
// One engine job at a time on a background QThread, for the views' workers
// (ComposeWorker, ComparisonWorker): the job runs on the thread, its results
// come back as the worker's own queued signals, an exception becomes
// failed(), and done() follows every job. Cancelling is an atomic the GUI
// thread sets and the job polls.
#include <QObject>
#include <QString>
#include <QThread>
#include <atomic>
#include <functional>

namespace lwb::ui {

class BackgroundWorker : public QObject {
  Q_OBJECT
 public:
  explicit BackgroundWorker(QObject* parent = nullptr);
  ~BackgroundWorker() override;  // see stop_and_wait

  void cancel() { cancel_ = true; }
  bool busy() const { return busy_; }

 signals:
  void failed(QString message);
  // After every job, after its result or failure.
  void done();

 protected:
  // Starts `job` on the thread (the cancel flag cleared); false, and nothing
  // started, while another job runs.
  bool start(std::function<void()> job);
  // Cancels the job and waits for it. Each worker's own destructor calls it
  // first: a job still running emits that worker's signals and reads its
  // members, which must outlive the thread.
  void stop_and_wait();
  std::atomic<bool> cancel_{false};

 private:
  QThread thread_;
  std::function<void()> job_;
  bool busy_ = false;  // GUI thread only
};

}  // namespace lwb::ui
