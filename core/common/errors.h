#pragma once
// Typed errors thrown by the engine. Every message names the field or file it is
// about and what was expected, so the CLI can print it as is and the UI can show
// it without further context.
#include <cstddef>
#include <stdexcept>
#include <string>

namespace lwb {

// Messages longer than this are cut (a file with 300k bad tensors must not
// make a 55 MB message that a label or a terminal then has to show).
constexpr std::size_t kMaxErrorMessageBytes = 4096;
// `message` unchanged when short enough, else its first bytes (cut at a UTF-8
// character boundary) and how much was left out.
std::string cap_message(const std::string& message, std::size_t max_bytes = kMaxErrorMessageBytes);

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(cap_message(message)) {}
};

// A bad value in an ExperimentConfig, a preset or a command-line flag.
class ConfigError : public Error {
 public:
  ConfigError(std::string field, const std::string& message)
      : Error(field + ": " + message), field_(std::move(field)) {}
  const std::string& field() const { return field_; }

 private:
  std::string field_;
};

// A file (or in-memory blob) that is not in the expected format.
class FormatError : public Error {
 public:
  FormatError(std::string source, const std::string& message)
      : Error(source + ": " + message), source_(std::move(source)) {}
  const std::string& source() const { return source_; }

 private:
  std::string source_;
};

// Training data that cannot be used (no rows, rows too long, ...).
class DataError : public Error {
 public:
  using Error::Error;
};

// A device allocation that did not fit.
class OutOfMemoryError : public Error {
 public:
  OutOfMemoryError(const std::string& device, std::size_t requested, std::size_t free_bytes)
      : Error(device + ": out of memory: requested " + std::to_string(requested) +
              " bytes, " + std::to_string(free_bytes) + " bytes free"),
        requested_(requested),
        free_(free_bytes) {}
  std::size_t requested() const { return requested_; }
  std::size_t free_bytes() const { return free_; }

 private:
  std::size_t requested_;
  std::size_t free_;
};

// SQLite store problems (locked, newer schema, constraint violated, ...).
class StoreError : public Error {
 public:
  // Busy and Full may pass (the other writer finishes, space is freed), so
  // writers that can wait retry them; Other is a lasting problem.
  enum class Reason { Other, Busy, Full };
  explicit StoreError(const std::string& message, Reason reason = Reason::Other)
      : Error(message), reason_(reason) {}
  Reason reason() const { return reason_; }

 private:
  Reason reason_;
};

// A GPU runtime or library call that failed; carries the call site.
class DeviceError : public Error {
 public:
  using Error::Error;
};

}  // namespace lwb
