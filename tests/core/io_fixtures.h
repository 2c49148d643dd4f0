#pragma once
// Shared by the format tests (PEFT folders, Hugging Face checkpoints): a model
// with the ledger its arenas report to, whole text files, and the message of
// a FormatError.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "core/common/errors.h"
#include "core/tensor/ledger.h"
#include "core/model/model.h"

namespace lwb::test {

// The ledger is declared first so it outlives the model's arenas.
struct Built {
  MemoryLedger ledger;
  std::unique_ptr<Model> model;
};

inline std::string read_text(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void write_text(const std::filesystem::path& file, const std::string& text) {
  std::ofstream(file, std::ios::binary) << text;
}

// The message of the FormatError `f` throws, or "" when it throws none.
template <class F>
std::string format_error(F&& f) {
  try {
    f();
  } catch (const FormatError& e) {
    return e.what();
  }
  return {};
}

}  // namespace lwb::test
