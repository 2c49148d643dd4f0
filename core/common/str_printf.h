#pragma once
// printf into a std::string, for messages.
#include <string>

namespace lwb {

std::string str_printf(const char* format, ...) __attribute__((format(printf, 1, 2)));

}  // namespace lwb
