#include "ui/background_worker.h"

#include <exception>

namespace lwb::ui {

BackgroundWorker::BackgroundWorker(QObject* parent) : QObject(parent) {
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

BackgroundWorker::~BackgroundWorker() { stop_and_wait(); }

void BackgroundWorker::stop_and_wait() {
  cancel_ = true;
  thread_.wait();
}

bool BackgroundWorker::start(std::function<void()> job) {
  if (busy_) return false;
  busy_ = true;
  cancel_ = false;
  job_ = std::move(job);
  thread_.start();
  return true;
}

}  // namespace lwb::ui
