#include "core/data/data_file.h"

#include <algorithm>
#include <cstring>

#include "core/common/errors.h"

namespace lwb::data {

std::string mib_text(std::size_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

DataFile::DataFile(const std::filesystem::path& file) : name_(file.string()) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) throw FormatError(name_, "no such file");
  if (std::filesystem::is_directory(file, ec)) throw FormatError(name_, "is a folder, expected a file");
  in_.open(file, std::ios::binary);
  if (!in_) throw FormatError(name_, "cannot open the file for reading");
}

std::size_t DataFile::read(std::span<char> buf) {
  in_.read(buf.data(), static_cast<std::streamsize>(buf.size()));
  if (in_.bad()) throw FormatError(name_, "read error");
  const auto n = static_cast<std::size_t>(in_.gcount());
  total_ += n;
  if (total_ > kMaxDataFileBytes)
    throw FormatError(name_, "stopped reading after " + mib_text(kMaxDataFileBytes) +
                                 ": data files are held in memory whole, so they may have at most that much "
                                 "(is it a device or a pipe that never ends?)");
  return n;
}

std::string read_data_file(const std::filesystem::path& file) {
  DataFile in(file);
  std::string text;
  std::vector<char> buf(1 << 16);
  while (const std::size_t n = in.read(buf)) text.append(buf.data(), n);
  return text;
}

bool LineReader::next(std::string& line, std::size_t& length, std::size_t max_bytes) {
  line.clear();
  length = 0;
  bool any = false;
  for (;;) {
    if (pos_ == end_) {
      end_ = in_.read(buf_);
      pos_ = 0;
      if (end_ == 0) {
        number_ += any;
        return any;
      }
    }
    any = true;
    const char* start = buf_.data() + pos_;
    const auto* nl = static_cast<const char*>(std::memchr(start, '\n', end_ - pos_));
    const std::size_t n = nl ? static_cast<std::size_t>(nl - start) : end_ - pos_;
    length += n;
    if (length <= max_bytes)
      line.append(start, n);
    else
      std::string().swap(line);
    pos_ += n + (nl ? 1 : 0);
    if (nl) {
      ++number_;
      return true;
    }
  }
}

std::string line_list(const std::vector<std::size_t>& lines) {
  constexpr std::size_t kShown = 5;
  std::string s = lines.size() == 1 ? "line " : "lines ";
  for (std::size_t i = 0; i < std::min(lines.size(), kShown); ++i) s += (i ? ", " : "") + std::to_string(lines[i]);
  if (lines.size() > kShown) s += " and " + std::to_string(lines.size() - kShown) + " more";
  return s;
}

}  // namespace lwb::data
