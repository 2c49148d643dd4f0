#pragma once
// Checking an error's message: EXPECT_THROW_WITH(Error type, expression, text
// the message must hold).
#include <QtTest>

#include <exception>
#include <string>

namespace lwb::test {

// The message of the E that f throws; empty when it throws nothing or
// something else.
template <class E, class F>
std::string thrown(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    qWarning("unexpected exception: %s", e.what());
  }
  return {};
}

}  // namespace lwb::test

#define EXPECT_THROW_WITH(E, expr, needle)                                                          \
  do {                                                                                              \
    const std::string message_ = lwb::test::thrown<E>([&] { (void)(expr); });                      \
    QVERIFY2(!message_.empty() && message_.find(needle) != std::string::npos,                       \
             ("expected " #E " mentioning '" + std::string(needle) + "', got '" + message_ + "'").c_str()); \
  } while (0)
