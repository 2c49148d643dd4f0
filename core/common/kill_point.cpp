#include "core/common/kill_point.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "core/common/integers.h"

namespace lwb {

void kill_point(std::string_view name) {
  static const std::string armed = [] {
    const char* v = std::getenv("LWB_KILL_POINT");
    return std::string(v ? v : "");
  }();
  if (armed.empty() || !armed.starts_with(name)) return;
  const std::string_view rest = std::string_view(armed).substr(name.size());
  int wait_ms = 0;
  if (!rest.empty()) {
    const auto ms = rest.starts_with(':') ? parse_integer<int>(rest.substr(1), 0) : std::nullopt;
    if (!ms) return;  // another point whose name starts with this one
    wait_ms = *ms;
  }
  std::fprintf(stderr, "kill point %.*s\n", static_cast<int>(name.size()), name.data());
  std::fflush(stderr);
  std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
  ::kill(::getpid(), SIGKILL);
}

}  // namespace lwb
