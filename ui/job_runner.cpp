#include "ui/job_runner.h"

#include <exception>

namespace lwb::ui {

JobRunner::JobRunner(QObject* parent) : QObject(parent) {
  connect(
      &thread_, &QThread::started, this,
      [this] {
        try {
          job_();
        } catch (const std::exception& e) {
          emit failed(QString::fromUtf8(e.what()));
        }
        thread_.quit();
      },
      Qt::DirectConnection);
  // Queued to this (GUI) thread, after the job's own signals.
  connect(&thread_, &QThread::finished, this, [this] {
    thread_.wait();
    job_ = {};
    busy_ = false;
    emit done();
  });
}

JobRunner::~JobRunner() {
  cancel_ = true;
  thread_.wait();
}

bool JobRunner::start(std::function<void()> job) {
  if (busy_) return false;
  busy_ = true;
  cancel_ = false;
  job_ = std::move(job);
  thread_.start();
  return true;
}

}  // namespace lwb::ui
