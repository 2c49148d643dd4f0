#include "core/cpu/cpu_share.h"

#include <fcntl.h>
#include <omp.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>

namespace lwb {

namespace {

// Whether another open file holds a lock on `file` (a live registration).
bool locked_by_someone(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool busy = ::flock(fd, LOCK_SH | LOCK_NB) != 0;
  ::close(fd);
  return busy;
}

}  // namespace

std::filesystem::path CpuShare::default_dir() {
  std::error_code ec;
  const std::filesystem::path shm = "/dev/shm";
  const std::filesystem::path base = std::filesystem::is_directory(shm, ec) ? shm : std::filesystem::temp_directory_path(ec);
  return base / ("lora-workbench-cpu-runs-" + std::to_string(::getuid()));
}

CpuShare::CpuShare(std::filesystem::path dir) : dir_(std::move(dir)), budget_(omp_get_max_threads()) {
  static std::atomic<int> serial{0};
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  const std::string id = std::to_string(::getpid()) + "-" + std::to_string(serial++);
  // Locked under a temporary name first, so no counter ever sees it unlocked
  // and takes it for a dead run's file.
  const std::filesystem::path tmp = dir_ / ("tmp-" + id);
  fd_ = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd_ < 0) return;  // no sharing then: this run uses its whole budget
  file_ = dir_ / ("run-" + id);
  if (::flock(fd_, LOCK_EX) != 0 || ::rename(tmp.c_str(), file_.c_str()) != 0) {
    ::close(fd_);
    ::unlink(tmp.c_str());
    fd_ = -1;
    file_.clear();
  }
}

CpuShare::~CpuShare() {
  if (fd_ >= 0) {
    ::unlink(file_.c_str());
    ::close(fd_);
  }
  omp_set_num_threads(budget_);
}

int CpuShare::runs() const {
  if (fd_ < 0) return 1;
  int live = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with("run-")) continue;
    if (entry.path() == file_ || locked_by_someone(entry.path()))
      ++live;
    else
      std::filesystem::remove(entry.path(), ec);  // its process has ended
  }
  return std::max(live, 1);
}

int CpuShare::fair_share() const { return std::max(1, budget_ / runs()); }

int CpuShare::use(int threads) const {
  threads = std::clamp(threads, 1, budget_);
  omp_set_num_threads(threads);
  return threads;
}

}  // namespace lwb
