#pragma once
// A JSON number read as an integer of type T in [lo, hi], or nullopt when it
// is not an integer or out of that range (nlohmann's get<int>() would wrap
// 4294967304 to 8). For engine sources only: it brings in nlohmann/json.
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

namespace lwb {

template <class T>
std::optional<T> json_integer(const nlohmann::json& v, T lo = std::numeric_limits<T>::min(),
                              T hi = std::numeric_limits<T>::max()) {
  auto fits = [&](auto x) -> std::optional<T> {
    if (std::cmp_less(x, lo) || std::cmp_greater(x, hi)) return std::nullopt;
    return static_cast<T>(x);
  };
  if (v.is_number_unsigned()) return fits(v.get<std::uint64_t>());
  if (v.is_number_integer()) return fits(v.get<std::int64_t>());
  return std::nullopt;
}

}  // namespace lwb
