#pragma once
// Training runs on one machine's CPU share its cores: a run registers for as
// long as it trains (a file it holds locked, under /dev/shm, so a killed
// process's registration ends with it, in any PID namespace), and a run that
// starts takes its thread budget divided by the number of runs registered.
// Two runs that each start every core's worth of OpenMP threads would
// otherwise fight for the cores and both crawl. A run keeps its thread count
// to the end: OpenBLAS's results depend on it, so changing it mid-run would
// make the run unrepeatable (and its resume differ from it).
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
  // budget / runs(), at least 1.
  int fair_share() const;
  // Sets this thread's OpenMP threads to `threads`, at most the budget
  // (buffers sized for the budget rely on it), at least 1; returns it.
  int use(int threads) const;
  // use(fair_share()): for work that does not keep a thread count in its
  // record (generation, prediction), registered only while it runs.
  int use_fair_share() const { return use(fair_share()); }
  int budget() const { return budget_; }

  static std::filesystem::path default_dir();

 private:
  std::filesystem::path dir_, file_;
  int fd_ = -1;
  int budget_;
};

}  // namespace lwb
