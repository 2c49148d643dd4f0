#include "core/format/zip.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "core/common/errors.h"
#include "core/format/atomic_file.h"
#include "core/format/mapped_file.h"

namespace lwb::format {

namespace {

constexpr std::uint32_t kEndOfDirectory = 0x06054b50, kDirectoryEntry = 0x02014b50, kLocalHeader = 0x04034b50;
constexpr std::size_t kEndSize = 22, kEntrySize = 46, kLocalSize = 30;

class Reader {
 public:
  Reader(std::span<const std::byte> bytes, std::string source) : b_(bytes), source_(std::move(source)) {}
  std::uint16_t u16(std::uint64_t at) const { return static_cast<std::uint16_t>(get(at, 2)); }
  std::uint32_t u32(std::uint64_t at) const { return static_cast<std::uint32_t>(get(at, 4)); }
  std::span<const std::byte> span(std::uint64_t at, std::uint64_t n, const std::string& what) const {
    if (at > b_.size() || n > b_.size() - at)
      throw FormatError(source_, what + " runs past the end of the archive (" + std::to_string(b_.size()) + " bytes)");
    return b_.subspan(at, n);
  }
  std::size_t size() const { return b_.size(); }
  [[noreturn]] void fail(const std::string& msg) const { throw FormatError(source_, msg); }

 private:
  std::uint64_t get(std::uint64_t at, int n) const {
    const auto s = span(at, static_cast<std::uint64_t>(n), "a header field");
    std::uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(s[static_cast<std::size_t>(i)]);
    return v;
  }
  std::span<const std::byte> b_;
  std::string source_;
};

std::vector<ZipEntry> read_directory(const Reader& r) {
  if (r.size() < kEndSize) r.fail("is not a zip archive (too short for its end record)");
  // The end record sits in the last 22 bytes plus a comment of up to 64 KiB.
  std::uint64_t end = r.size() - kEndSize;
  const std::uint64_t lowest = r.size() > kEndSize + 0xFFFF ? r.size() - kEndSize - 0xFFFF : 0;
  while (r.u32(end) != kEndOfDirectory) {
    if (end == lowest) r.fail("is not a zip archive (no end-of-central-directory record)");
    --end;
  }
  if (r.u16(end + 4) != 0 || r.u16(end + 6) != 0) r.fail("is a multi-disk zip archive, which is not supported");
  const std::uint16_t count = r.u16(end + 10);
  const std::uint32_t dir_size = r.u32(end + 12), dir_offset = r.u32(end + 16);
  if (count == 0xFFFF || dir_size == 0xFFFFFFFF || dir_offset == 0xFFFFFFFF)
    r.fail("is a Zip64 archive, which is not supported");
  r.span(dir_offset, dir_size, "the central directory");
  std::vector<ZipEntry> entries;
  std::uint64_t at = dir_offset;
  for (std::uint16_t i = 0; i < count; ++i) {
    if (r.u32(at) != kDirectoryEntry) r.fail("central directory entry " + std::to_string(i) + " is damaged");
    ZipEntry e;
    const std::uint16_t flags = r.u16(at + 8);
    e.method = r.u16(at + 10);
    e.crc32 = r.u32(at + 16);
    e.compressed = r.u32(at + 20);
    e.size = r.u32(at + 24);
    const std::uint16_t name_len = r.u16(at + 28), extra_len = r.u16(at + 30), comment_len = r.u16(at + 32);
    e.local_header = r.u32(at + 42);
    const auto name = r.span(at + kEntrySize, name_len, "an entry name");
    e.name.assign(reinterpret_cast<const char*>(name.data()), name.size());
    if (flags & 1) r.fail("member \"" + e.name + "\" is encrypted, which is not supported");
    entries.push_back(std::move(e));
    at += kEntrySize + name_len + extra_len + comment_len;
  }
  return entries;
}

std::vector<std::uint8_t> inflate_raw(std::span<const std::byte> in, std::uint64_t size, const std::string& where) {
  std::vector<std::uint8_t> out(static_cast<std::size_t>(size));
  z_stream z{};
  if (inflateInit2(&z, -MAX_WBITS) != Z_OK) throw FormatError(where, "zlib could not start inflating");
  // Inflated in slices: avail_in and avail_out are 32-bit.
  constexpr std::size_t kSlice = std::size_t{1} << 30;
  std::size_t in_at = 0, out_at = 0;
  int rc = Z_OK;
  while (rc == Z_OK) {
    if (z.avail_in == 0 && in_at < in.size()) {
      const std::size_t n = std::min(kSlice, in.size() - in_at);
      z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data() + in_at));
      z.avail_in = static_cast<uInt>(n);
      in_at += n;
    }
    if (z.avail_out == 0 && out_at < out.size()) {
      const std::size_t n = std::min(kSlice, out.size() - out_at);
      z.next_out = out.data() + out_at;
      z.avail_out = static_cast<uInt>(n);
      out_at += n;
    }
    const uInt before_in = z.avail_in, before_out = z.avail_out;
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc == Z_BUF_ERROR || (rc == Z_OK && z.avail_in == before_in && z.avail_out == before_out)) {
      const bool more_out = z.avail_out == 0 && out_at == out.size();
      inflateEnd(&z);
      throw FormatError(where, more_out ? "inflates to more bytes than its recorded size " + std::to_string(size)
                                        : "deflate data ends early");
    }
  }
  const std::uint64_t produced = z.total_out;
  inflateEnd(&z);
  if (rc != Z_STREAM_END) throw FormatError(where, std::string("bad deflate data: ") + (z.msg ? z.msg : "zlib error"));
  if (produced != size)
    throw FormatError(where, "inflates to " + std::to_string(produced) + " bytes, its recorded size is " +
                                 std::to_string(size));
  return out;
}

}  // namespace

std::vector<ZipEntry> zip_entries(const std::filesystem::path& archive) {
  const InputBytes bytes = InputBytes::map(archive);
  return read_directory(Reader(bytes.bytes(), archive.string()));
}

void extract_zip_member(const std::filesystem::path& archive, const std::string& name,
                        const std::filesystem::path& out) {
  const InputBytes bytes = InputBytes::map(archive);
  const Reader r(bytes.bytes(), archive.string());
  const std::vector<ZipEntry> entries = read_directory(r);
  const auto it = std::find_if(entries.begin(), entries.end(), [&](const ZipEntry& e) { return e.name == name; });
  if (it == entries.end()) r.fail("has no member \"" + name + "\"");
  const ZipEntry& e = *it;
  const std::string where = archive.string() + ": member \"" + name + "\"";
  if (r.u32(e.local_header) != kLocalHeader) throw FormatError(where, "its local header is damaged");
  const std::uint64_t data = e.local_header + kLocalSize + r.u16(e.local_header + 26) + r.u16(e.local_header + 28);
  const std::span<const std::byte> packed = r.span(data, e.compressed, "member \"" + name + "\"");
  std::vector<std::uint8_t> content;
  if (e.method == 0) {
    if (e.compressed != e.size) throw FormatError(where, "is stored but its two recorded sizes differ");
    const auto* p = reinterpret_cast<const std::uint8_t*>(packed.data());
    content.assign(p, p + packed.size());
  } else if (e.method == 8) {
    content = inflate_raw(packed, e.size, where);
  } else {
    throw FormatError(where, "uses compression method " + std::to_string(e.method) +
                                 "; only stored (0) and deflated (8) members are supported");
  }
  uLong crc = crc32(0L, Z_NULL, 0);
  for (std::size_t at = 0; at < content.size();) {  // crc32 takes 32-bit lengths
    const std::size_t n = std::min<std::size_t>(content.size() - at, std::numeric_limits<uInt>::max());
    crc = crc32(crc, content.data() + at, static_cast<uInt>(n));
    at += n;
  }
  if (crc != e.crc32) throw FormatError(where, "fails its CRC-32 check (the archive is damaged)");
  io::write_file_atomically(out, std::as_bytes(std::span<const std::uint8_t>(content)));
}

}  // namespace lwb::format
