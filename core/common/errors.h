#pragma once
// Typed errors thrown by the engine. Every message names the field or file it is
// about and what was expected, so the CLI can print it as is and the UI can show
// it without further context.
#include <cstddef>
#include <stdexcept>
#include <string>

namespace lwb {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
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

// NaN/Inf loss or gradient.
class NumericError : public Error {
 public:
  using Error::Error;
};

// SQLite store problems (locked, newer schema, constraint violated, ...).
class StoreError : public Error {
 public:
  using Error::Error;
};

// A GPU runtime or library call that failed; carries the call site.
class DeviceError : public Error {
 public:
  using Error::Error;
};

}  // namespace lwb
