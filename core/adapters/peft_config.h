#pragma once
// Reading adapter_config.json (PEFT's adapter config) field by field, for the
// variants' PEFT hooks (core/adapters/descriptor.h) and core/io/peft.cpp:
// typed access with a FormatError naming the file and the field.
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/common/errors.h"
#include "core/common/integers.h"
#include "core/common/json_integer.h"

namespace lwb {

class PeftConfigReader {
 public:
  PeftConfigReader(const nlohmann::json& j, std::string source) : j_(j), source_(std::move(source)) {}

  const std::string& source() const { return source_; }
  [[noreturn]] void fail(const std::string& field, const std::string& msg) const {
    throw FormatError(source_, "field \"" + field + "\" " + msg);
  }
  bool has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }
  const nlohmann::json& at(const char* key) const { return j_[key]; }

  double number(const char* key, double fallback) const {
    if (!has(key)) return fallback;
    if (!j_[key].is_number()) fail(key, "must be a number, got " + j_[key].dump());
    return j_[key].get<double>();
  }
  // Read into its real type, refused outside [lo, hi] (never wrapped).
  template <class T>
  T integer(const char* key, T fallback, T lo, T hi = std::numeric_limits<T>::max()) const {
    if (!has(key)) return fallback;
    const std::optional<T> v = json_integer<T>(j_[key], lo, hi);
    if (!v) fail(key, "must be " + integer_range_text(lo, hi) + ", got " + j_[key].dump());
    return *v;
  }
  bool boolean(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    if (!j_[key].is_boolean()) fail(key, "must be true or false, got " + j_[key].dump());
    return j_[key].get<bool>();
  }
  std::string string(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    if (!j_[key].is_string()) fail(key, "must be a string, got " + j_[key].dump());
    return j_[key].get<std::string>();
  }
  // Refuses a field unless it is absent, null, false or empty.
  void require_unset(const char* key, const std::string& why) const {
    if (!has(key)) return;
    const nlohmann::json& v = j_[key];
    if ((v.is_boolean() && !v.get<bool>()) || ((v.is_array() || v.is_object()) && v.empty())) return;
    fail(key, "is " + v.dump() + ": " + why);
  }

 private:
  const nlohmann::json& j_;
  std::string source_;
};

}  // namespace lwb
