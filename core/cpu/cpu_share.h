#pragma once
// Training runs on one machine's CPU share its cores: a run registers for as
// long as it trains (a file it holds locked, under /dev/shm, so a killed
// process's registration ends with it, in any PID namespace), and each run
// uses its thread budget divided by the number of runs registered. Two runs
// that each start every core's worth of OpenMP threads would otherwise fight
// for the cores and both crawl.
#include <filesystem>
#include <string>

namespace lwb {

class CpuShare {
 public:
  // Registers this run in `dir` (created if needed); the budget is the
  // number of threads this thread may use now (omp_get_max_threads()).
  explicit CpuShare(std::filesystem::path dir = default_dir());
  // Unregisters and gives this thread its whole budget back.
  ~CpuShare();
  CpuShare(const CpuShare&) = delete;
  CpuShare& operator=(const CpuShare&) = delete;

  // Runs registered now, this one included (1 when registering failed).
  int runs() const;
  // Sets this thread's OpenMP threads to budget / runs() (at least 1, never
  // above the budget, which buffers sized for it rely on); returns it.
  int apply() const;
  int budget() const { return budget_; }

  static std::filesystem::path default_dir();

 private:
  std::filesystem::path dir_, file_;
  int fd_ = -1;
  int budget_;
};

}  // namespace lwb
