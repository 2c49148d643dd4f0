#pragma once
// Data files read in blocks, never past kMaxDataFileBytes (a device or a pipe
// that never ends must not fill the memory), whole or line by line.
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

namespace lwb::data {

// Data files are read whole into memory (and tokenized there), so reading
// stops with a FormatError past this size.
constexpr std::size_t kMaxDataFileBytes = std::size_t{1} << 30;

class DataFile {
 public:
  // FormatError naming the file when it is missing, a folder or unreadable.
  explicit DataFile(const std::filesystem::path& file);
  // Up to buf.size() bytes; 0 at the end.
  std::size_t read(std::span<char> buf);

 private:
  std::string name_;
  std::ifstream in_;
  std::size_t total_ = 0;
};

std::string read_data_file(const std::filesystem::path& file);

// Lines of a data file; a line longer than its limit is read past, not kept.
class LineReader {
 public:
  explicit LineReader(const std::filesystem::path& file) : in_(file) {}
  // The next line (without '\n') into `line` and its length in bytes; false
  // at the end. When length > max_bytes, `line` is left empty.
  bool next(std::string& line, std::size_t& length, std::size_t max_bytes);
  std::size_t number() const { return number_; }  // of the line last returned, 1-based

 private:
  DataFile in_;
  std::vector<char> buf_ = std::vector<char>(1 << 16);
  std::size_t pos_ = 0, end_ = 0, number_ = 0;
};

// "lines 4, 9, 12, 20, 31 and 3 more"
std::string line_list(const std::vector<std::size_t>& lines);
// "1024 MiB"
std::string mib_text(std::size_t bytes);

}  // namespace lwb::data
