// safetensors reader/writer: a hand-built golden file, the writer's exact bytes
// (ours and the reference implementation's published test vectors), round
// trips over every dtype, rejection of corrupt files, the fp16/bf16
// conversions and the atomic writer.
#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <bit>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "core/common/errors.h"
#include "core/common/half.h"
#include "core/format/safetensors.h"

using namespace lwb;
using namespace lwb::io;
using namespace std::string_literals;

namespace {

std::string le64(std::uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

std::vector<std::uint8_t> to_vec(const std::string& s) { return {s.begin(), s.end()}; }

// A file from a header (not padded) and raw data bytes.
std::vector<std::uint8_t> st_file(const std::string& header, const std::string& data) {
  return to_vec(le64(header.size()) + header + data);
}

template <typename T>
std::span<const std::byte> raw(const std::vector<T>& v) {
  return std::as_bytes(std::span<const T>(v));
}

void write_file(const std::filesystem::path& p, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::vector<std::string> dir_entries(const QTemporaryDir& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir.path().toStdString()))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::uint32_t bits(float f) { return std::bit_cast<std::uint32_t>(f); }
float from_bits(std::uint32_t b) { return std::bit_cast<float>(b); }

// A valid two-tensor file that the corruption cases start from.
const std::string kA = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
const std::string kB = R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]})";
const std::string kData12(12, '\x01');

}  // namespace

class TestSafetensors : public QObject {
  Q_OBJECT

 private slots:
  void goldenFile();
  void writerBytes();
  void writerMatchesReferenceVectors();
  void roundTripAllDtypes();
  void readErrors();
  void writerRejectsBadInput();
  void corruptFileRejected_data();
  void corruptFileRejected();
  void truncatedAtEveryByte();
  void openReportsPath();
  void bf16Conversion();
  void f16Conversion();
  void f16ConversionMatchesCompiler();
  void atomicWriter();
};

// (1) Built byte by byte from the format description: header length (LE),
// JSON with entries in non-offset order and an unpadded length, raw data.
void TestSafetensors::goldenFile() {
  const std::string header =
      R"({"__metadata__":{"format":"pt","note":"golden"},)"
      R"("w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
      R"("h":{"dtype":"F16","shape":[3],"data_offsets":[16,22]},)"
      R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[22,26]}})";
  QCOMPARE(header.size(), std::size_t{215});
  const std::string bytes = "\xD7\0\0\0\0\0\0\0"s + header +
                            // w: 1.0, -2.5, 0.5, 3.0 (F32 little-endian)
                            "\x00\x00\x80\x3F" "\x00\x00\x20\xC0" "\x00\x00\x00\x3F" "\x00\x00\x40\x40"s +
                            // h: 1.0 = 0x3C00, -2.0 = 0xC000, 0x3555 = 0.333251953125
                            "\x00\x3C" "\x00\xC0" "\x55\x35"s +
                            // b: 1.0 = 0x3F80, -0.5 = 0xBF00
                            "\x80\x3F" "\x00\xBF"s;
  QCOMPARE(bytes.size(), std::size_t{8 + 215 + 26});

  QTemporaryDir dir;
  QVERIFY(dir.isValid());
  const std::filesystem::path path = dir.filePath("golden.safetensors").toStdString();
  write_file(path, to_vec(bytes));

  for (int from_file = 0; from_file < 2; ++from_file) {
    const SafetensorsFile st = from_file ? SafetensorsFile::open(path)
                                         : SafetensorsFile::from_bytes(to_vec(bytes), "golden blob");
    QCOMPARE(st.source(), from_file ? path.string() : "golden blob"s);
    QCOMPARE(st.metadata().size(), std::size_t{2});
    QCOMPARE(st.metadata().at("format"), "pt"s);
    QCOMPARE(st.metadata().at("note"), "golden"s);

    QCOMPARE(st.tensors().size(), std::size_t{3});
    QCOMPARE(st.tensors()[0].name, "w"s);  // sorted by offset, not by JSON order or name
    QCOMPARE(st.tensors()[1].name, "h"s);
    QCOMPARE(st.tensors()[2].name, "b"s);

    const StTensorInfo& w = st.at("w");
    QCOMPARE(w.dtype, StDType::F32);
    QCOMPARE(w.shape, (std::vector<std::int64_t>{2, 2}));
    QCOMPARE(w.begin, std::uint64_t{0});
    QCOMPARE(w.end, std::uint64_t{16});
    QCOMPARE(w.numel(), std::int64_t{4});
    QCOMPARE(st.read_f32("w"), (std::vector<float>{1.0f, -2.5f, 0.5f, 3.0f}));

    QCOMPARE(st.at("h").dtype, StDType::F16);
    QCOMPARE(st.read_f32("h"), (std::vector<float>{1.0f, -2.0f, 0.333251953125f}));
    QCOMPARE(st.at("b").dtype, StDType::BF16);
    QCOMPARE(st.read_f32("b"), (std::vector<float>{1.0f, -0.5f}));

    const auto b = st.bytes(st.at("b"));
    QCOMPARE(b.size(), std::size_t{4});
    QCOMPARE(std::to_integer<int>(b[0]), 0x80);
    QVERIFY(st.find("missing") == nullptr);
  }
}

// (2) Tensors are ordered by dtype (I64 before F32) then name, the header is
// compact with __metadata__ first and padded with spaces to a multiple of 8.
void TestSafetensors::writerBytes() {
  const std::vector<float> b = {1.0f, 2.0f};
  const std::vector<float> a = {3.0f};
  const std::vector<std::int64_t> idx = {1, -1};
  const std::vector<std::uint8_t> out =
      serialize_safetensors({{"b", StDType::F32, {2}, raw(b)},
                             {"idx", StDType::I64, {2}, raw(idx)},
                             {"a", StDType::F32, {1}, raw(a)}},
                            {{"format", "pt"}});

  const std::string expected =
      "\xC8\0\0\0\0\0\0\0"s  // header length 200 = 198 bytes of JSON + 2 spaces
      R"({"__metadata__":{"format":"pt"},)"
      R"("idx":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},)"
      R"("a":{"dtype":"F32","shape":[1],"data_offsets":[16,20]},)"
      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[20,28]}})"
      "  "
      "\x01\0\0\0\0\0\0\0"s                              // idx[0] = 1
      "\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF"                 // idx[1] = -1
      "\x00\x00\x40\x40"                                 // a = 3.0
      "\x00\x00\x80\x3F" "\x00\x00\x00\x40"s;            // b = 1.0, 2.0
  QCOMPARE(std::string(out.begin(), out.end()), expected);
}

// The byte vectors published in the reference implementation's own tests
// (huggingface/safetensors, tensor.rs: test_serialization, test_empty,
// test_serialization_forced_alignement), restated here as strings.
void TestSafetensors::writerMatchesReferenceVectors() {
  const std::vector<float> data = {0, 1, 2, 3, 4, 5};
  const std::string floats =
      "\0\0\0\0" "\0\0\x80\x3F" "\0\0\0\x40" "\0\0\x40\x40" "\0\0\x80\x40" "\0\0\xA0\x40"s;
  auto as_string = [](const std::vector<std::uint8_t>& v) { return std::string(v.begin(), v.end()); };

  QCOMPARE(as_string(serialize_safetensors({{"attn.0", StDType::F32, {1, 2, 3}, raw(data)}}, {})),
           "\x40\0\0\0\0\0\0\0"s + R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})" +
               floats);
  QCOMPARE(as_string(serialize_safetensors({{"attn0", StDType::F32, {1, 1, 2, 3}, raw(data)}}, {})),
           "\x48\0\0\0\0\0\0\0"s + R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})" +
               "       " + floats);
  QCOMPARE(as_string(serialize_safetensors({}, {})), "\x08\0\0\0\0\0\0\0{}      "s);
  QCOMPARE(as_string(serialize_safetensors({}, {{"framework", "pt"}})),
           "\x28\0\0\0\0\0\0\0"s + R"({"__metadata__":{"framework":"pt"}})" + "     ");
}

// (3) Every dtype, a zero-element tensor and a scalar survive write -> open;
// the layout is by dtype descending, so each tensor is aligned to its size.
void TestSafetensors::roundTripAllDtypes() {
  struct Case {
    std::string name;
    StDType dtype;
    std::vector<std::int64_t> shape;
    std::vector<std::uint8_t> data;
  };
  std::vector<Case> cases;
  const StDType all[] = {StDType::BOOL, StDType::U8,   StDType::I8,  StDType::I16, StDType::U16,
                         StDType::F16,  StDType::BF16, StDType::I32, StDType::U32, StDType::F32,
                         StDType::F64,  StDType::I64,  StDType::U64};
  for (StDType d : all) {
    const std::size_t size = st_dtype_size(d);
    Case c{std::string("t_") + st_dtype_name(d), d, {3, 2}, {}};
    for (std::size_t i = 0; i < 6 * size; ++i) c.data.push_back(static_cast<std::uint8_t>(i * 37 + size));
    if (d == StDType::BOOL) c.data = {1, 0, 0, 1, 1, 0};
    cases.push_back(std::move(c));
  }
  cases.push_back({"empty", StDType::F32, {0, 3}, {}});
  cases.push_back({"scalar", StDType::F64, {}, {0, 0, 0, 0, 0, 0, 0xF0, 0x3F}});  // 1.0

  std::vector<StTensorWrite> writes;
  for (const Case& c : cases) writes.push_back({c.name, c.dtype, c.shape, raw(c.data)});
  const std::map<std::string, std::string> meta = {
      {"format", "pt"}, {"quote\"and\\slash", "line\nbreak\ttab"}, {"unicode", "\xC3\xA9\xE2\x82\xAC"}};

  QTemporaryDir dir;
  QVERIFY(dir.isValid());
  const std::filesystem::path path = dir.filePath("all.safetensors").toStdString();
  write_safetensors(path, writes, meta);
  const SafetensorsFile st = SafetensorsFile::open(path);

  QCOMPARE(st.metadata(), meta);
  QCOMPARE(st.tensors().size(), cases.size());
  for (const Case& c : cases) {
    const StTensorInfo& t = st.at(c.name);
    QCOMPARE(t.dtype, c.dtype);
    QCOMPARE(t.shape, c.shape);
    const auto b = st.bytes(t);
    QCOMPARE(b.size(), c.data.size());
    QVERIFY(std::equal(b.begin(), b.end(), reinterpret_cast<const std::byte*>(c.data.data())));
  }
  QCOMPARE(st.at("empty").numel(), std::int64_t{0});
  QVERIFY(st.read_f32("empty").empty());
  QCOMPARE(st.at("scalar").numel(), std::int64_t{1});
  QCOMPARE(st.read_f32("scalar"), std::vector<float>{1.0f});

  // Offsets ascend, dtypes descend, every tensor is aligned to its element size
  // in the file (8-byte length + padded header keep data 8-aligned).
  const std::uint64_t data_start = std::filesystem::file_size(path) - st.tensors().back().end;
  QCOMPARE(data_start % 8, std::uint64_t{0});
  for (std::size_t i = 1; i < st.tensors().size(); ++i) {
    const StTensorInfo& prev = st.tensors()[i - 1];
    const StTensorInfo& t = st.tensors()[i];
    QCOMPARE(t.begin, prev.end);
    QVERIFY(t.dtype <= prev.dtype);
    QCOMPARE(t.begin % st_dtype_size(t.dtype), std::uint64_t{0});
  }

  // A moved file keeps its mapping.
  SafetensorsFile moved = SafetensorsFile::open(path);
  SafetensorsFile target = std::move(moved);
  QCOMPARE(target.read_f32("scalar"), std::vector<float>{1.0f});
}

void TestSafetensors::readErrors() {
  const std::vector<std::int32_t> ints = {1, 2};
  const std::vector<float> floats = {1, 2, 3};
  const SafetensorsFile st = SafetensorsFile::from_bytes(
      serialize_safetensors({{"ints", StDType::I32, {2}, raw(ints)}, {"f", StDType::F32, {3}, raw(floats)}}, {}),
      "blob 7");
  try {
    st.read_f32("ints");
    QFAIL("reading I32 as float should throw");
  } catch (const FormatError& e) {
    QCOMPARE(e.source(), "blob 7"s);
    QVERIFY2(std::string(e.what()).find("dtype I32") != std::string::npos, e.what());
  }
  try {
    st.at("nope");
    QFAIL("a missing tensor should throw");
  } catch (const FormatError& e) {
    QVERIFY2(std::string(e.what()).find("\"nope\"") != std::string::npos, e.what());
  }
  std::vector<float> small(2);
  QVERIFY_THROWS_EXCEPTION(FormatError, st.read_f32_into("f", small));
  std::vector<float> exact(3);
  st.read_f32_into("f", exact);
  QCOMPARE(exact, floats);
}

void TestSafetensors::writerRejectsBadInput() {
  const std::vector<float> two = {1, 2};
  QVERIFY_THROWS_EXCEPTION(FormatError, serialize_safetensors({{"", StDType::F32, {2}, raw(two)}}, {}));
  QVERIFY_THROWS_EXCEPTION(FormatError, serialize_safetensors({{"__metadata__", StDType::F32, {2}, raw(two)}}, {}));
  // Duplicates of different dtypes are not neighbours after the dtype sort.
  QVERIFY_THROWS_EXCEPTION(FormatError, serialize_safetensors({{"x", StDType::F32, {2}, raw(two)},
                                                               {"y", StDType::I8, {0}, {}},
                                                               {"x", StDType::I64, {1}, raw(two)}},
                                                              {}));
  QVERIFY_THROWS_EXCEPTION(FormatError, serialize_safetensors({{"x", StDType::F32, {3}, raw(two)}}, {}));
  QVERIFY_THROWS_EXCEPTION(FormatError, serialize_safetensors({{"x", StDType::F32, {-2}, raw(two)}}, {}));
  QVERIFY_THROWS_EXCEPTION(FormatError, serialize_safetensors({{"bad\xFF", StDType::F32, {2}, raw(two)}}, {}));
}

// (4) Each corruption is a FormatError naming the source and the problem.
void TestSafetensors::corruptFileRejected_data() {
  QTest::addColumn<QByteArray>("bytes");
  QTest::addColumn<QString>("word");
  auto row = [](const char* name, const std::vector<std::uint8_t>& v, const char* word) {
    QTest::newRow(name) << QByteArray(reinterpret_cast<const char*>(v.data()), static_cast<qsizetype>(v.size()))
                        << QString(word);
  };
  const std::vector<std::uint8_t> valid = st_file("{" + kA + "," + kB + "}", kData12);
  auto cut = [&](std::size_t n) { return std::vector<std::uint8_t>(valid.begin(), valid.begin() + n); };
  const std::size_t n = valid.size() - 12 - 8;  // header length

  row("empty file", {}, "truncated");
  row("cut in the length", cut(5), "truncated");
  row("cut in the header", cut(8 + n / 2), "truncated");
  row("cut at the data start", cut(8 + n), "truncated");
  row("cut in the data", cut(8 + n + 5), "truncated");
  row("cut one byte short", cut(valid.size() - 1), "truncated");
  {
    std::vector<std::uint8_t> v = valid;
    v[0] = static_cast<std::uint8_t>(v.size());  // N alone exceeds the file
    row("header length past EOF", v, "header length");
  }
  row("header length 2^63", to_vec(le64(1ull << 63) + "{}"), "exceeds");
  row("header length 100000001", to_vec(le64(100'000'001) + "{}"), "exceeds");
  row("header not JSON", st_file("{not json}", ""), "JSON");
  row("header cut JSON", st_file(R"({"a":{"dtype":)", ""), "JSON");
  row("header not an object", st_file("[1,2,3]", ""), "object");
  row("header leading space", st_file(" {}", ""), "object");
  row("header empty", st_file("", ""), "object");
  row("garbage after header object", st_file("{}x", ""), "JSON");
  row("invalid UTF-8 in name", st_file("{\"\xFF\":{}}", ""), "JSON");
  row("entry not an object", st_file(R"({"a":[1]})", ""), "object");
  row("empty tensor name", st_file(R"({"":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", "x"), "empty name");
  row("overlapping offsets",
      st_file("{" + kA + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", kData12), "overlap");
  row("gapped offsets",
      st_file("{" + kA + R"(,"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}})", std::string(16, 'x')),
      "gap");
  row("first tensor not at 0", st_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", "12345678"),
      "gap");
  row("shape/size mismatch", st_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", "12345678"),
      "mismatch");
  row("end before begin", st_file(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[8,4]}})", "12345678"),
      "before");
  row("unknown dtype", st_file(R"({"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}})", "1234"), "dtype");
  row("dtype not a string", st_file(R"({"a":{"dtype":32,"shape":[1],"data_offsets":[0,4]}})", "1234"), "dtype");
  row("huge shape [2^40,2^40]",
      st_file(R"({"a":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,4]}})", "1234"),
      "overflow");
  row("huge shape times dtype size",
      st_file(R"({"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}})", "12345678"),
      "overflow");
  row("huge offsets",
      st_file(R"({"a":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,18446744073709551615]}})", ""),
      "too large");
  row("data past the end",
      st_file(R"({"a":{"dtype":"U8","shape":[1099511627776],"data_offsets":[0,1099511627776]}})", "1"),
      "truncated");
  row("negative dimension", st_file(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "1234"),
      "negative");
  row("fractional dimension", st_file(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", "1234"),
      "integer");
  row("shape not an array", st_file(R"({"a":{"dtype":"F32","shape":4,"data_offsets":[0,4]}})", "1234"), "shape");
  row("three offsets", st_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,4]}})", "1234"), "two");
  row("one offset", st_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", "1234"), "two");
  row("missing data_offsets", st_file(R"({"a":{"dtype":"F32","shape":[1]}})", "1234"), "missing");
  row("unexpected field", st_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}})", "1234"),
      "unexpected");
  row("trailing bytes", st_file("{" + kA + "," + kB + "}", kData12 + "tail"), "trailing");
  row("duplicate tensor", st_file("{" + kA + "," + kA + "}", std::string(8, 'x')), "duplicate");
  row("duplicate field", st_file(R"({"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "1234"),
      "duplicate");
  row("duplicate metadata key", st_file(R"({"__metadata__":{"k":"1","k":"2"}})", ""), "duplicate");
  row("duplicate __metadata__", st_file(R"({"__metadata__":{},"__metadata__":{}})", ""), "duplicate");
  row("metadata value not a string", st_file(R"({"__metadata__":{"k":1}})", ""), "string");
  row("metadata not an object", st_file(R"({"__metadata__":"pt"})", ""), "__metadata__");
  row("deep nesting", st_file("{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}", ""),
      "object");
}

void TestSafetensors::corruptFileRejected() {
  QFETCH(QByteArray, bytes);
  QFETCH(QString, word);
  std::vector<std::uint8_t> v(bytes.begin(), bytes.end());
  try {
    SafetensorsFile::from_bytes(std::move(v), "adapter blob 12");
    QFAIL("expected a FormatError");
  } catch (const FormatError& e) {
    QCOMPARE(e.source(), "adapter blob 12"s);
    QVERIFY2(QString::fromStdString(e.what()).contains(word), e.what());
  }
}

// Every prefix of a valid file is rejected cleanly (no crash, no overread
// under sanitizers), and so is every single-byte corruption of its header
// length.
void TestSafetensors::truncatedAtEveryByte() {
  const std::vector<float> f = {1, 2, 3};
  const std::vector<std::uint8_t> valid =
      serialize_safetensors({{"f", StDType::F32, {3}, raw(f)}, {"e", StDType::F16, {0}, {}}}, {{"k", "v"}});
  for (std::size_t n = 0; n < valid.size(); ++n)
    QVERIFY_THROWS_EXCEPTION(FormatError,
                             SafetensorsFile::from_bytes({valid.begin(), valid.begin() + n}, "prefix"));
  for (std::size_t i = 0; i < 8; ++i) {
    std::vector<std::uint8_t> v = valid;
    v[i] ^= 0xFF;
    QVERIFY_THROWS_EXCEPTION(FormatError, SafetensorsFile::from_bytes(v, "flipped"));
  }
  QCOMPARE(SafetensorsFile::from_bytes(valid, "whole").tensors().size(), std::size_t{2});
}

void TestSafetensors::openReportsPath() {
  QTemporaryDir dir;
  QVERIFY(dir.isValid());
  const std::filesystem::path path = dir.filePath("short.safetensors").toStdString();
  write_file(path, to_vec("\x10\0\0\0"s));
  try {
    SafetensorsFile::open(path);
    QFAIL("expected a FormatError");
  } catch (const FormatError& e) {
    QCOMPARE(e.source(), path.string());
    QVERIFY2(std::string(e.what()).find("truncated") != std::string::npos, e.what());
  }
  write_file(path, {});
  QVERIFY_THROWS_EXCEPTION(FormatError, SafetensorsFile::open(path));
  QVERIFY_THROWS_EXCEPTION(FormatError, SafetensorsFile::open(dir.filePath("absent").toStdString()));
  QVERIFY_THROWS_EXCEPTION(FormatError, SafetensorsFile::open(dir.path().toStdString()));
}

// (5) Round to nearest, ties to even; inf stays inf; NaN stays NaN.
void TestSafetensors::bf16Conversion() {
  QCOMPARE(f32_to_bf16(1.0f), std::uint16_t{0x3F80});
  QCOMPARE(f32_to_bf16(-0.0f), std::uint16_t{0x8000});
  QCOMPARE(f32_to_bf16(from_bits(0x3F808000)), std::uint16_t{0x3F80});  // tie, even is down
  QCOMPARE(f32_to_bf16(from_bits(0x3F818000)), std::uint16_t{0x3F82});  // tie, even is up
  QCOMPARE(f32_to_bf16(from_bits(0x3F808001)), std::uint16_t{0x3F81});  // just above the tie
  QCOMPARE(f32_to_bf16(from_bits(0x3F807FFF)), std::uint16_t{0x3F80});  // just below the tie
  QCOMPARE(f32_to_bf16(from_bits(0x3FFF8000)), std::uint16_t{0x4000});  // carry into the exponent
  QCOMPARE(f32_to_bf16(std::numeric_limits<float>::infinity()), std::uint16_t{0x7F80});
  QCOMPARE(f32_to_bf16(-std::numeric_limits<float>::infinity()), std::uint16_t{0xFF80});
  QCOMPARE(f32_to_bf16(std::numeric_limits<float>::max()), std::uint16_t{0x7F80});  // rounds up to inf
  QCOMPARE(f32_to_bf16(from_bits(0x00008000)), std::uint16_t{0x0000});  // subnormal tie to even
  QCOMPARE(f32_to_bf16(from_bits(0x00018000)), std::uint16_t{0x0002});
  QVERIFY(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  QVERIFY(std::isnan(bf16_to_f32(f32_to_bf16(from_bits(0x7F800001)))));  // payload only in dropped bits
  const std::uint16_t neg_nan = f32_to_bf16(from_bits(0xFF800001));
  QVERIFY(std::isnan(bf16_to_f32(neg_nan)));
  QVERIFY(neg_nan & 0x8000);

  QCOMPARE(bf16_to_f32(0x3F80), 1.0f);
  QCOMPARE(bf16_to_f32(0xC000), -2.0f);
  QCOMPARE(bf16_to_f32(0x0001), std::ldexp(1.0f, -133));
  QCOMPARE(bf16_to_f32(0x7F80), std::numeric_limits<float>::infinity());
  // Every non-NaN bf16 value is a float that converts back to itself.
  for (std::uint32_t h = 0; h <= 0xFFFF; ++h) {
    const float f = bf16_to_f32(static_cast<std::uint16_t>(h));
    if (!std::isnan(f)) QCOMPARE(f32_to_bf16(f), static_cast<std::uint16_t>(h));
  }
}

void TestSafetensors::f16Conversion() {
  QCOMPARE(f32_to_f16(1.0f), std::uint16_t{0x3C00});
  QCOMPARE(f32_to_f16(-2.0f), std::uint16_t{0xC000});
  QCOMPARE(f32_to_f16(-0.0f), std::uint16_t{0x8000});
  QCOMPARE(f32_to_f16(65504.0f), std::uint16_t{0x7BFF});  // largest finite
  QCOMPARE(f32_to_f16(65519.0f), std::uint16_t{0x7BFF});
  QCOMPARE(f32_to_f16(65520.0f), std::uint16_t{0x7C00});  // tie with an odd mantissa: up to inf
  QCOMPARE(f32_to_f16(1e10f), std::uint16_t{0x7C00});
  QCOMPARE(f32_to_f16(-std::numeric_limits<float>::infinity()), std::uint16_t{0xFC00});
  QCOMPARE(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), std::uint16_t{0x3C00});      // tie, even is down
  QCOMPARE(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), std::uint16_t{0x3C02});  // tie, even is up
  QCOMPARE(f32_to_f16(std::nextafter(1.0f + std::ldexp(1.0f, -11), 2.0f)), std::uint16_t{0x3C01});
  QCOMPARE(f32_to_f16(2047.5f), std::uint16_t{0x6800});  // 2048 after the carry into the exponent
  // Subnormals: units of 2^-24.
  QCOMPARE(f32_to_f16(std::ldexp(1.0f, -24)), std::uint16_t{0x0001});
  QCOMPARE(f32_to_f16(std::ldexp(1.0f, -25)), std::uint16_t{0x0000});       // tie, even is 0
  QCOMPARE(f32_to_f16(std::ldexp(1.5f, -25)), std::uint16_t{0x0001});       // above the tie
  QCOMPARE(f32_to_f16(std::ldexp(1.5f, -24)), std::uint16_t{0x0002});       // tie, even is up
  QCOMPARE(f32_to_f16(std::ldexp(2.5f, -24)), std::uint16_t{0x0002});       // tie, even is down
  QCOMPARE(f32_to_f16(std::ldexp(1023.0f, -24)), std::uint16_t{0x03FF});    // largest subnormal
  QCOMPARE(f32_to_f16(std::ldexp(1023.5f, -24)), std::uint16_t{0x0400});    // rounds to smallest normal
  QCOMPARE(f32_to_f16(std::ldexp(1.0f, -14)), std::uint16_t{0x0400});
  QCOMPARE(f32_to_f16(std::ldexp(1.0f, -26)), std::uint16_t{0x0000});
  QCOMPARE(f32_to_f16(-std::ldexp(1.0f, -24)), std::uint16_t{0x8001});
  QCOMPARE(f32_to_f16(std::numeric_limits<float>::denorm_min()), std::uint16_t{0x0000});
  QVERIFY(std::isnan(f16_to_f32(f32_to_f16(std::numeric_limits<float>::quiet_NaN()))));
  QVERIFY(std::isnan(f16_to_f32(f32_to_f16(from_bits(0x7F800001)))));
  QVERIFY(f32_to_f16(-std::numeric_limits<float>::quiet_NaN()) & 0x8000);

  QCOMPARE(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  QCOMPARE(f16_to_f32(0x03FF), std::ldexp(1023.0f, -24));
  QCOMPARE(f16_to_f32(0x8001), -std::ldexp(1.0f, -24));
  QCOMPARE(f16_to_f32(0x0400), std::ldexp(1.0f, -14));
  QCOMPARE(f16_to_f32(0x7BFF), 65504.0f);
  QCOMPARE(f16_to_f32(0x7C00), std::numeric_limits<float>::infinity());
  QVERIFY(std::isnan(f16_to_f32(0x7C01)));
  QVERIFY(std::signbit(f16_to_f32(0x8000)));
  // Every non-NaN half value is a float that converts back to itself.
  for (std::uint32_t h = 0; h <= 0xFFFF; ++h) {
    const float f = f16_to_f32(static_cast<std::uint16_t>(h));
    if (!std::isnan(f)) QCOMPARE(f32_to_f16(f), static_cast<std::uint16_t>(h));
  }
}

// Cross-checks against the compiler's own IEEE binary16 conversion where it
// has one, over a dense sweep of float bit patterns (every sign, exponent and
// rounding case is hit).
void TestSafetensors::f16ConversionMatchesCompiler() {
#ifdef __FLT16_MANT_DIG__
  for (std::uint64_t b = 0; b <= 0xFFFFFFFFull; b += 0x3FF) {
    const float f = from_bits(static_cast<std::uint32_t>(b));
    if (std::isnan(f)) continue;
    const auto expected = std::bit_cast<std::uint16_t>(static_cast<_Float16>(f));
    if (f32_to_f16(f) != expected)
      QFAIL(qPrintable(QString("float bits 0x%1: got 0x%2, expected 0x%3")
                           .arg(b, 8, 16, QChar('0'))
                           .arg(f32_to_f16(f), 4, 16, QChar('0'))
                           .arg(expected, 4, 16, QChar('0'))));
  }
  for (std::uint32_t h = 0; h <= 0xFFFF; ++h) {
    const float expected = static_cast<float>(std::bit_cast<_Float16>(static_cast<std::uint16_t>(h)));
    const float got = f16_to_f32(static_cast<std::uint16_t>(h));
    QVERIFY(std::isnan(expected) ? std::isnan(got) : bits(got) == bits(expected));
  }
#else
  QSKIP("this compiler has no _Float16 to compare against");
#endif
}

// (6) The writer replaces an existing file whole and leaves no temporary file,
// also when it refuses its input.
void TestSafetensors::atomicWriter() {
  QTemporaryDir dir;
  QVERIFY(dir.isValid());
  const std::filesystem::path path = dir.filePath("model.safetensors").toStdString();
  const std::vector<float> v1 = {1, 2, 3};
  const std::vector<float> v2 = {4, 5};

  write_safetensors(path, {{"w", StDType::F32, {3}, raw(v1)}}, {{"version", "1"}});
  QCOMPARE(dir_entries(dir), std::vector<std::string>{"model.safetensors"});
  write_safetensors(path, {{"w", StDType::F32, {2}, raw(v2)}}, {{"version", "2"}});
  QCOMPARE(dir_entries(dir), std::vector<std::string>{"model.safetensors"});
  {
    const SafetensorsFile st = SafetensorsFile::open(path);
    QCOMPARE(st.metadata().at("version"), "2"s);
    QCOMPARE(st.read_f32("w"), v2);
  }

  QVERIFY_THROWS_EXCEPTION(
      FormatError, write_safetensors(path, {{"w", StDType::F32, {5}, raw(v2)}}, {{"version", "3"}}));
  QCOMPARE(dir_entries(dir), std::vector<std::string>{"model.safetensors"});
  QCOMPARE(SafetensorsFile::open(path).metadata().at("version"), "2"s);

  try {
    write_safetensors(dir.filePath("no/such/dir/x.safetensors").toStdString(), {}, {});
    QFAIL("expected a FormatError");
  } catch (const FormatError& e) {
    QVERIFY2(std::string(e.what()).find("no/such/dir/x.safetensors") != std::string::npos, e.what());
  }
}

QTEST_APPLESS_MAIN(TestSafetensors)
#include "test_safetensors.moc"
