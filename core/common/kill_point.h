#pragma once
// A test hook for crash tests: when the environment variable LWB_KILL_POINT
// names this point ("NAME", or "NAME:MS" to wait MS milliseconds first, e.g.
// in the middle of an evaluation), the process writes "kill point NAME" to
// stderr and kills itself with SIGKILL, exactly as `kill -9` would at that
// moment. Without the variable it costs one string comparison.
#include <string_view>

namespace lwb {

void kill_point(std::string_view name);

}  // namespace lwb
