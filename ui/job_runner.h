#pragma once
// A BackgroundWorker that takes any job from outside (the Library tab's
// tools each build theirs): start() is public, and the job is handed the
// cancel flag the GUI thread sets.
#include "ui/background_worker.h"

namespace lwb::ui {

class JobRunner : public BackgroundWorker {
  Q_OBJECT
 public:
  using BackgroundWorker::BackgroundWorker;
  ~JobRunner() override { stop_and_wait(); }

  using BackgroundWorker::start;
  const std::atomic<bool>* cancel_flag() const { return &cancel_; }
};

}  // namespace lwb::ui
