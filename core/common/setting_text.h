#pragma once
// Settings as text (`--set key=value`, the window's fields, JSON values): one
// reading of numbers and booleans for every setting, with messages naming
// the setting's key.
#include <string>
#include <vector>

#include "core/common/errors.h"
#include "core/common/integers.h"

namespace lwb {

// ConfigError(key, "expected an integer from lo to hi, got \"v\"") otherwise.
template <class T>
T parse_setting_integer(const std::string& key, const std::string& v, T lo, T hi) {
  if (const std::optional<T> x = parse_integer<T>(v, lo, hi)) return *x;
  throw ConfigError(key, "expected " + integer_range_text(lo, hi) + ", got \"" + v + "\"");
}
// A finite number; ConfigError naming the key otherwise.
double parse_setting_number(const std::string& key, const std::string& v);
// true/1/yes or false/0/no.
bool parse_setting_bool(const std::string& key, const std::string& v);
// "q, v,,k" -> {"q", "v", "k"}: a list setting's items, spaces and empty items dropped.
std::vector<std::string> split_setting_list(const std::string& v);
// The shortest text that reads back as the same double ("0.003", not
// "0.0030000000000000001"): exact round trips, and what a user would type.
std::string format_setting_number(double v);

}  // namespace lwb
