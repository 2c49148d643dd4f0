// GGUF: the reader on files the gguf Python package wrote (every metadata
// type, nested arrays, a custom alignment, versions 2 and 3), the writer's
// bytes against the package's, one precise message per corrupt file, every
// dequantised type bit-identical to gguf.dequantize and the export
// quantisers to gguf.quantize, the llama config mapping and the refusals, the
// Q/K permutation, logits of tiny LLaMA files against transformers loading
// the same files, exports identical to the package's, and SmolLM2-135M when
// its file is present. Goldens: tests/reference/make_gguf_golden.py.
#include <QElapsedTimer>
#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/adapters/adapter_state.h"
#include "core/adapters/attach.h"
#include "core/common/errors.h"
#include "core/cpu/cpu_backend.h"
#include "core/format/gguf.h"
#include "core/format/gguf_quants.h"
#include "core/io/gguf_model.h"
#include "core/io/hf_checkpoint.h"
#include "core/format/safetensors.h"
#include "core/model/checkpoint.h"
#include "core/model/weights_init.h"
#include "core/common/paths.h"
#include "io_fixtures.h"
#include "model_fixtures.h"

using namespace lwb;
using namespace lwb::format;
using namespace lwb::test;
using namespace std::string_literals;
namespace fs = std::filesystem;

namespace {

const fs::path kData = fs::path(LWB_TEST_DATA_DIR) / "gguf";

std::string le32(std::uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }
std::string le64(std::uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); }
std::string gstr(const std::string& s) { return le64(s.size()) + s; }

// A metadata entry and a tensor info, byte by byte.
std::string kv(const std::string& key, GgufType type, const std::string& value) {
  return gstr(key) + le32(static_cast<std::uint32_t>(type)) + value;
}
std::string info(const std::string& name, const std::vector<std::uint64_t>& dims, std::uint32_t type,
                 std::uint64_t offset) {
  std::string s = gstr(name) + le32(static_cast<std::uint32_t>(dims.size()));
  for (std::uint64_t d : dims) s += le64(d);
  return s + le32(type) + le64(offset);
}
// Header, metadata and infos, zero-padded to `alignment`, then the data.
std::string file_bytes(std::uint64_t n_tensors, std::uint64_t n_kv, const std::string& meta, const std::string& infos,
                       const std::string& data, std::size_t alignment = 32, std::uint32_t version = 3) {
  std::string s = "GGUF" + le32(version) + le64(n_tensors) + le64(n_kv) + meta + infos;
  s.resize((s.size() + alignment - 1) / alignment * alignment, '\0');
  return s + data;
}

std::vector<std::uint8_t> to_vec(const std::string& s) { return {s.begin(), s.end()}; }
std::vector<std::uint8_t> read_bytes(const fs::path& p) {
  const std::string s = read_text(p);
  return {s.begin(), s.end()};
}

std::vector<std::uint32_t> bits(const std::vector<float>& v) {
  std::vector<std::uint32_t> out;
  for (float f : v) out.push_back(std::bit_cast<std::uint32_t>(f));
  return out;
}

// The tensors of a file, to write it again.
std::vector<GgufTensorWrite> writes_of(const GgufFile& f) {
  std::vector<GgufTensorWrite> w;
  for (const GgufTensorInfo& t : f.tensors()) w.push_back({t.name, t.type, t.dims, f.bytes(t)});
  return w;
}

GgufValue uval(GgufType t, std::uint64_t v) { return {t, GgufType::U8, v}; }
GgufValue ival(GgufType t, std::int64_t v) { return {t, GgufType::U8, v}; }

std::unique_ptr<Built> load_model(Backend& be, const GgufFile& f, std::int64_t B, std::int64_t T) {
  auto b = std::make_unique<Built>();
  b->model = std::make_unique<Model>(io::read_gguf_config(f), Model::Mode::Frozen, DType::F32);
  b->model->materialize(be, b->ledger, B, T);
  io::import_gguf_weights(*b->model, f);
  return b;
}

std::vector<double> logits_for(Model& m, Backend& be, const std::vector<std::int32_t>& ids, std::int64_t B,
                               std::int64_t T) {
  const std::vector<std::int32_t> targets(ids.size(), -1);
  m.set_batch(ids.data(), targets.data(), B, T);
  m.forward(false, 0);
  return download_values(be, m.logits());
}

std::vector<std::int32_t> read_i32(const io::SafetensorsFile& st, const std::string& name) {
  const auto b = st.bytes(st.at(name));
  std::vector<std::int32_t> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), b.size());
  return v;
}

std::vector<double> as_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// The llama metadata of the tiny goldens, as a base the refusal cases edit.
GgufMetadata llama_metadata() {
  return {{"general.architecture", GgufValue::string("llama")},
          {"llama.block_count", GgufValue::u32(2)},
          {"llama.context_length", GgufValue::u32(128)},
          {"llama.embedding_length", GgufValue::u32(32)},
          {"llama.feed_forward_length", GgufValue::u32(64)},
          {"llama.attention.head_count", GgufValue::u32(4)},
          {"llama.attention.head_count_kv", GgufValue::u32(2)},
          {"llama.attention.layer_norm_rms_epsilon", GgufValue::f32(1e-5f)},
          {"llama.vocab_size", GgufValue::u32(64)}};
}

void set_key(GgufMetadata& m, const std::string& key, GgufValue v) {
  for (auto& [k, value] : m)
    if (k == key) {
      value = std::move(v);
      return;
    }
  m.emplace_back(key, std::move(v));
}

void remove_key(GgufMetadata& m, const std::string& key) {
  std::erase_if(m, [&](const auto& e) { return e.first == key; });
}

}  // namespace

class TestGguf : public QObject {
  Q_OBJECT
  CpuBackend be;

 private slots:
  void metadataGolden();
  void version2();
  void typedAccessorErrors();
  void writerMatchesPythonPackage_data();
  void writerMatchesPythonPackage();
  void writerRoundTripsEveryType();
  void writerRejectsBadInput();
  void corruptFileRejected_data();
  void corruptFileRejected();
  void truncatedAtEveryByte();
  void openReportsPath();
  void dequantizeGolden_data();
  void dequantizeGolden();
  void quantizeGolden();
  void unsupportedType();
  void llamaConfig();
  void llamaConfigRefused_data();
  void llamaConfigRefused();
  void llama3ScalingKept();
  void permutation();
  void logitsMatchTransformers_data();
  void logitsMatchTransformers();
  void importRejectsMismatch();
  void exportMatchesPythonPackage_data();
  void exportMatchesPythonPackage();
  void exportRoundTrip_data();
  void exportRoundTrip();
  void mergedExport();
  void realSmolLM2();
};

// metadata.gguf, written by gguf-py: one key per value type, arrays of each,
// arrays of arrays, alignment 64 and tensors of 1 to 4 dims.
void TestGguf::metadataGolden() {
  const GgufFile f = GgufFile::open(kData / "metadata.gguf");
  QCOMPARE(f.version(), 3u);
  QCOMPARE(f.alignment(), 64u);
  QCOMPARE(f.data_offset() % 64, std::uint64_t{0});
  QCOMPARE(f.metadata().front().first, "general.architecture"s);
  QCOMPARE(f.get_string("general.architecture"), "test"s);

  auto check = [&](const char* key, GgufType type, auto value) {
    const GgufValue& v = f.at(key);
    QVERIFY2(v.type == type, key);
    QVERIFY2(std::get<decltype(value)>(v.data) == value, key);
  };
  check("t.u8", GgufType::U8, std::uint64_t{200});
  check("t.i8", GgufType::I8, std::int64_t{-100});
  check("t.u16", GgufType::U16, std::uint64_t{60000});
  check("t.i16", GgufType::I16, std::int64_t{-30000});
  check("t.u32", GgufType::U32, std::uint64_t{4000000000u});
  check("t.i32", GgufType::I32, std::int64_t{-2000000000});
  check("t.f32", GgufType::F32, 0.1f);
  check("t.bool", GgufType::Bool, true);
  check("t.string", GgufType::String, "h\xC3\xA9llo \xE2\x9C\x93"s);
  check("t.u64", GgufType::U64, std::uint64_t{(1ull << 63) + 5});
  check("t.i64", GgufType::I64, std::int64_t{-(1ll << 62) - 7});
  check("t.f64", GgufType::F64, 0.1);
  QCOMPARE(f.get_u32("t.u32"), 4000000000u);
  QCOMPARE(f.get_f32("t.f32"), 0.1f);
  QCOMPARE(f.get_bool("t.bool"), true);

  auto items = [&](const char* key, GgufType elem) {
    std::vector<GgufValue::Array::value_type> out;
    for (const GgufValue& v : f.get_array(key, elem)) {
      if (v.type != elem) qFatal("%s: item of the wrong type", key);
      out.push_back(v);
    }
    return out;
  };
  auto u = [](const GgufValue& v) { return std::get<std::uint64_t>(v.data); };
  auto i = [](const GgufValue& v) { return std::get<std::int64_t>(v.data); };
  auto d = [](const GgufValue& v) { return std::get<double>(v.data); };
  {
    const auto a = items("t.array.u8", GgufType::U8);
    QCOMPARE(a.size(), std::size_t{3});
    QCOMPARE(u(a[2]), std::uint64_t{255});
  }
  QCOMPARE(i(items("t.array.i8", GgufType::I8)[0]), std::int64_t{-128});
  QCOMPARE(u(items("t.array.u16", GgufType::U16)[1]), std::uint64_t{65535});
  QCOMPARE(i(items("t.array.i16", GgufType::I16)[0]), std::int64_t{-32768});
  QCOMPARE(u(items("t.array.u32", GgufType::U32)[1]), std::uint64_t{4294967295u});
  QCOMPARE(f.get_i32s("t.array.i32"), (std::vector<std::int32_t>{-2147483647 - 1, 2147483647}));
  QCOMPARE(f.get_f32s("t.array.f32"), (std::vector<float>{1.5f, -0.25f, 3e38f}));
  QCOMPARE(std::get<bool>(items("t.array.bool", GgufType::Bool)[1].data), false);
  QCOMPARE(f.get_strings("t.array.string"), (std::vector<std::string>{"a", "", "\xE4\xB8\xAD\xE6\x96\x87"}));
  QCOMPARE(u(items("t.array.u64", GgufType::U64)[0]), std::uint64_t{18446744073709551615ull});
  QCOMPARE(i(items("t.array.i64", GgufType::I64)[0]), std::numeric_limits<std::int64_t>::min());
  QCOMPARE(d(items("t.array.f64", GgufType::F64)[0]), 1e300);

  const auto nested = items("t.array.nested", GgufType::Array);
  QCOMPARE(nested.size(), std::size_t{2});
  QCOMPARE(nested[0].type_text(), "array of i32"s);
  QCOMPARE(i(std::get<GgufValue::Array>(nested[0].data)[1]), std::int64_t{2});
  QCOMPARE(i(std::get<GgufValue::Array>(nested[1].data)[0]), std::int64_t{3});
  const auto nested_s = items("t.array.nested_strings", GgufType::Array);
  QCOMPARE(std::get<std::string>(std::get<GgufValue::Array>(nested_s[1].data)[1].data), "z"s);

  QCOMPARE(f.tensors().size(), std::size_t{4});
  QCOMPARE(f.tensor("a").shape(), (std::vector<std::int64_t>{3}));
  QCOMPARE(f.tensor("b").type, GgmlType::Q8_0);
  QCOMPARE(f.tensor("b").dims, (std::vector<std::uint64_t>{32, 2}));  // innermost first
  QCOMPARE(f.tensor("c").shape(), (std::vector<std::int64_t>{2, 3, 4}));
  QCOMPARE(f.tensor("d").shape(), (std::vector<std::int64_t>{1, 2, 1, 3}));
  for (const GgufTensorInfo& t : f.tensors()) QCOMPARE(t.offset % 64, std::uint64_t{0});
  QCOMPARE(f.read_f32("a"), (std::vector<float>{1, 2, 3}));
  std::vector<float> c(24), d6(6);
  for (int k = 0; k < 24; ++k) c[k] = static_cast<float>(k);
  for (int k = 0; k < 6; ++k) d6[k] = static_cast<float>(k);
  QCOMPARE(f.read_f32("c"), c);
  QCOMPARE(f.read_f32("d"), d6);
  const std::vector<float> b = f.read_f32("b");  // linspace(-1, 1, 64) through Q8_0
  QVERIFY(std::abs(b.front() + 1.0f) < 0.01f);
  QVERIFY(std::abs(b[40] - (-1.0f + 80.0f / 63)) < 0.01f);
}

// Version 2 has the same layout; only the number differs.
void TestGguf::version2() {
  std::vector<std::uint8_t> bytes = read_bytes(kData / "metadata.gguf");
  bytes[4] = 2;
  const GgufFile v2 = GgufFile::from_bytes(bytes, "v2");
  const GgufFile v3 = GgufFile::open(kData / "metadata.gguf");
  QCOMPARE(v2.version(), 2u);
  QVERIFY(v2.metadata() == v3.metadata());
  QCOMPARE(v2.tensors().size(), v3.tensors().size());
  QCOMPARE(v2.read_f32("c"), v3.read_f32("c"));
}

void TestGguf::typedAccessorErrors() {
  const GgufFile f = GgufFile::open(kData / "metadata.gguf");
  const std::string src = (kData / "metadata.gguf").string() + ": ";
  QCOMPARE(format_error([&] { f.get_u32("t.string"); }), src + "key \"t.string\": expected u32, got string");
  QCOMPARE(format_error([&] { f.get_f32("t.f64"); }), src + "key \"t.f64\": expected f32, got f64");
  QCOMPARE(format_error([&] { f.get_string("t.array.string"); }),
           src + "key \"t.array.string\": expected string, got array of string");
  QCOMPARE(format_error([&] { f.get_bool("t.u8"); }), src + "key \"t.u8\": expected bool, got u8");
  QCOMPARE(format_error([&] { f.get_strings("t.array.i32"); }),
           src + "key \"t.array.i32\": expected array of string, got array of i32");
  QCOMPARE(format_error([&] { f.get_i32s("t.i32"); }), src + "key \"t.i32\": expected array of i32, got i32");
  QCOMPARE(format_error([&] { f.at("no.such.key"); }), src + "no metadata key \"no.such.key\"");
  QCOMPARE(format_error([&] { f.tensor("zz"); }), src + "no tensor named \"zz\"");
  QVERIFY(f.find("no.such.key") == nullptr);
  QVERIFY(f.find_tensor("zz") == nullptr);
}

// Our writer lays files out byte for byte as gguf-py does: read a file the
// package wrote, write its metadata and tensors again, get the same bytes.
void TestGguf::writerMatchesPythonPackage_data() {
  QTest::addColumn<QString>("name");
  for (const char* n : {"metadata.gguf", "quants.gguf", "tiny_llama.gguf", "tiny_llama_mixed.gguf"})
    QTest::newRow(n) << QString(n);
}

void TestGguf::writerMatchesPythonPackage() {
  QFETCH(QString, name);
  const fs::path path = kData / name.toStdString();
  const GgufFile f = GgufFile::open(path);
  QVERIFY(serialize_gguf(f.metadata(), writes_of(f)) == read_bytes(path));
  QTemporaryDir tmp;
  const fs::path out = fs::path(tmp.path().toStdString()) / "copy.gguf";
  write_gguf(out, f.metadata(), writes_of(f));
  QVERIFY(read_bytes(out) == read_bytes(path));
}

// Every value type, empty arrays (which gguf-py cannot write) and nesting,
// through our writer and reader.
void TestGguf::writerRoundTripsEveryType() {
  GgufMetadata m = {
      {"u8", uval(GgufType::U8, 255)},
      {"i8", ival(GgufType::I8, -128)},
      {"u16", uval(GgufType::U16, 65535)},
      {"i16", ival(GgufType::I16, -32768)},
      {"u32", uval(GgufType::U32, 4294967295u)},
      {"i32", ival(GgufType::I32, -5)},
      {"f32", GgufValue::f32(-1.25f)},
      {"bool", GgufValue{GgufType::Bool, GgufType::U8, false}},
      {"string", GgufValue::string("")},
      {"u64", uval(GgufType::U64, ~0ull)},
      {"i64", ival(GgufType::I64, std::numeric_limits<std::int64_t>::min())},
      {"f64", GgufValue{GgufType::F64, GgufType::U8, -1e-300}},
      {"empty", GgufValue::array(GgufType::F64, {})},
      {"deep", GgufValue::array(GgufType::Array, {GgufValue::array(GgufType::Array,
                                                                   {GgufValue::array(GgufType::Bool, {})})})},
      {"general.alignment", GgufValue::u32(8)},
  };
  const std::vector<float> x = {1, 2, 3};
  const std::vector<GgufTensorWrite> t = {{"x", GgmlType::F32, {3}, std::as_bytes(std::span(x))},
                                          {"scalar", GgmlType::F32, {}, std::as_bytes(std::span(x).first(1))}};
  const GgufFile f = GgufFile::from_bytes(serialize_gguf(m, t), "round trip");
  QVERIFY(f.metadata() == m);
  QCOMPARE(f.alignment(), 8u);
  QCOMPARE(f.read_f32("x"), x);
  QCOMPARE(f.tensor("scalar").shape(), std::vector<std::int64_t>{});
  QCOMPARE(f.read_f32("scalar"), std::vector<float>{1});
  QCOMPARE(f.tensor("scalar").offset, std::uint64_t{16});  // 12 bytes padded to 8

  // A signalling NaN keeps its bits (a trip through double would quiet it).
  const GgufMetadata nan = {{"nan", GgufValue::f32(std::bit_cast<float>(0x7F800001u))}};
  const std::vector<std::uint8_t> bytes = serialize_gguf(nan, {});
  QVERIFY(serialize_gguf(GgufFile::from_bytes(bytes, "nan").metadata(), {}) == bytes);
}

void TestGguf::writerRejectsBadInput() {
  const std::vector<float> x(32, 1.0f);
  const auto bytes = std::as_bytes(std::span(x));
  auto err = [](const GgufMetadata& m, const std::vector<GgufTensorWrite>& t) {
    return format_error([&] { serialize_gguf(m, t, "w"); });
  };
  QCOMPARE(err({{"", GgufValue::u32(1)}}, {}), "w: a metadata key is empty"s);
  QCOMPARE(err({{"k", GgufValue::u32(1)}, {"k", GgufValue::u32(2)}}, {}), "w: duplicate key \"k\""s);
  QCOMPARE(err({{"general.alignment", GgufValue::u32(24)}}, {}),
           "w: key \"general.alignment\": expected a u32 power of two"s);
  QCOMPARE(err({{"general.alignment", GgufValue::string("32")}}, {}),
           "w: key \"general.alignment\": expected a u32 power of two"s);
  QCOMPARE(err({{"k", uval(GgufType::U8, 256)}}, {}), "w: key \"k\": a value of u8 holds data of another kind or range"s);
  QCOMPARE(err({{"k", GgufValue{GgufType::String, GgufType::U8, 1.0}}}, {}),
           "w: key \"k\": a value of string holds data of another kind or range"s);
  QCOMPARE(err({{"k", GgufValue::array(GgufType::U32, {GgufValue::string("x")})}}, {}),
           "w: key \"k\": an item of an array of u32 is a string"s);
  QCOMPARE(err({}, {{"", GgmlType::F32, {32}, bytes}}), "w: a tensor name is empty"s);
  QCOMPARE(err({}, {{"a", GgmlType::F32, {32}, bytes}, {"a", GgmlType::F32, {32}, bytes}}),
           "w: duplicate tensor name \"a\""s);
  QCOMPARE(err({}, {{"a", GgmlType::F32, {2, 2, 2, 2, 2}, bytes}}), "w: tensor \"a\": 5 dimensions; at most 4 are allowed"s);
  QCOMPARE(err({}, {{"a", GgmlType::F32, {31}, bytes}}),
           "w: tensor \"a\": shape [31] of F32 does not match its 128 data bytes"s);
  QCOMPARE(err({}, {{"a", GgmlType::Q8_0, {16, 2}, bytes.first(34)}}),
           "w: tensor \"a\": shape [16, 2] of Q8_0 does not match its 34 data bytes"s);
  QTemporaryDir tmp;
  const fs::path out = fs::path(tmp.path().toStdString()) / "bad.gguf";
  QVERIFY(!format_error([&] { write_gguf(out, {{"", GgufValue::u32(1)}}, {}); }).empty());
  QVERIFY(!fs::exists(out));  // bad input leaves no file
}

void TestGguf::corruptFileRejected_data() {
  QTest::addColumn<QByteArray>("bytes");
  QTest::addColumn<QString>("message");
  auto row = [](const char* name, const std::string& bytes, const std::string& message) {
    QTest::newRow(name) << QByteArray(bytes.data(), static_cast<qsizetype>(bytes.size()))
                        << QString::fromStdString(message);
  };
  const std::string k7 = kv("k", GgufType::U32, le32(7));
  const std::string a8 = info("a", {2}, 0, 0);
  const std::string data8(8, '\x01');
  auto one_kv = [&](const std::string& entry) { return file_bytes(0, 1, entry, "", ""); };
  auto one_tensor = [&](const std::string& ti, const std::string& data) { return file_bytes(1, 0, "", ti, data); };

  row("empty file", "", "truncated: the magic at byte 0 needs 4 bytes but only 0 remain");
  row("bad magic", "GGML" + le32(3) + le64(0) + le64(0), "not a GGUF file: it starts with \"GGML\", expected \"GGUF\"");
  row("version 1", "GGUF" + le32(1) + le64(0) + le64(0),
      "GGUF version 1 (32-bit counts) is not supported; expected version 2 or 3");
  row("version 4", "GGUF" + le32(4) + le64(0) + le64(0), "unsupported GGUF version 4; expected 2 or 3");
  row("big-endian", "GGUF" + le32(0x03000000) + le64(0) + le64(0),
      "big-endian GGUF files are not supported (the version reads as 50331648)");
  row("cut in the counts", ("GGUF" + le32(3) + le64(0)).substr(0, 14),
      "truncated: the tensor count at byte 8 needs 8 bytes but only 6 remain");
  row("metadata count too large", "GGUF" + le32(3) + le64(0) + le64(1ull << 60),
      "truncated: 1152921504606846976 metadata entries cannot fit in the 0 bytes that remain");
  row("tensor count too large", "GGUF" + le32(3) + le64(1000) + le64(0) + std::string(100, '\0'),
      "truncated: 1000 tensor infos cannot fit in the 100 bytes that remain");
  row("empty key", one_kv(kv("", GgufType::U32, le32(7))), "metadata entry 0: empty key; expected a non-empty name");
  row("duplicate key", file_bytes(0, 2, k7 + k7, "", ""), "key \"k\": duplicate key");
  row("key past the end", "GGUF" + le32(3) + le64(0) + le64(1) + le64(1000) + std::string(13, 'k'),
      "metadata entry 0: truncated: a key at byte 32 needs 1000 bytes but only 13 remain");
  row("unknown value type", one_kv(kv("k", static_cast<GgufType>(13), le32(7))),
      "key \"k\": unknown value type 13 (expected 0..12)");
  row("bool not 0 or 1", one_kv(kv("k", GgufType::Bool, "\x02")), "key \"k\": bool value is 2; expected 0 or 1");
  row("string past the end", one_kv(kv("k", GgufType::String, le64(1ull << 40))),
      "key \"k\": truncated: a string value at byte 45 needs 1099511627776 bytes but only 19 remain");
  row("array count too large", one_kv(kv("k", GgufType::Array, le32(4) + le64(1ull << 62))),
      "key \"k\": truncated: an array of 4611686018427387904 u32 values at byte 49 needs at least 4 bytes each but "
      "only 15 remain");
  row("unknown array element type", one_kv(kv("k", GgufType::Array, le32(77) + le64(0))),
      "key \"k\": unknown value type 77 (expected 0..12)");
  {
    std::string nested;
    for (int d = 0; d < 9; ++d) nested += le32(9) + le64(1);
    row("arrays nested 9 deep", one_kv(kv("k", GgufType::Array, nested + le32(4) + le64(0))),
        "key \"k\": arrays nested deeper than 8 levels");
  }
  row("alignment not u32", one_kv(kv("general.alignment", GgufType::U64, le64(32))),
      "key \"general.alignment\": expected u32, got u64");
  row("alignment 0", one_kv(kv("general.alignment", GgufType::U32, le32(0))),
      "key \"general.alignment\": 0 is not a power of two");
  row("alignment 48", one_kv(kv("general.alignment", GgufType::U32, le32(48))),
      "key \"general.alignment\": 48 is not a power of two");
  row("empty tensor name", one_tensor(info("", {2}, 0, 0), data8),
      "tensor info 0: empty tensor name; expected a non-empty name");
  row("duplicate tensor name", file_bytes(2, 0, "", a8 + info("a", {2}, 0, 32), data8 + std::string(24, '\0') + data8),
      "tensor \"a\": duplicate tensor name");
  row("5 dimensions", one_tensor(info("a", {1, 1, 1, 1, 2}, 0, 0), data8),
      "tensor \"a\": 5 dimensions; at most 4 are allowed");
  row("element count overflows", one_tensor(info("a", {1ull << 32, 1ull << 31, 2}, 0, 0), data8),
      "tensor \"a\": shape [4294967296, 2147483648, 2] has more than 2^63 - 1 elements");
  row("byte size overflows", one_tensor(info("a", {1ull << 61}, 28, 0), data8),
      "tensor \"a\": shape [2305843009213693952] of F64 needs more than 2^64 bytes");
  row("removed type code 4", one_tensor(info("a", {32}, 4, 0), data8), "tensor \"a\": unknown ggml type code 4");
  row("unknown type code 99", one_tensor(info("a", {32}, 99, 0), data8), "tensor \"a\": unknown ggml type code 99");
  row("rows not whole blocks", one_tensor(info("a", {16, 2}, 8, 0), std::string(34, '\0')),
      "tensor \"a\": rows of 16 elements are not whole Q8_0 blocks of 32");
  row("offset not at the start", one_tensor(info("a", {2}, 0, 32), std::string(40, '\0')),
      "tensor \"a\": data offset 32, expected 0 (tensors follow each other in order, each padded to the alignment "
      "of 32)");
  row("second tensor overlaps", file_bytes(2, 0, "", a8 + info("b", {2}, 0, 4), std::string(40, '\0')),
      "tensor \"b\": data offset 4, expected 32 (tensors follow each other in order, each padded to the alignment "
      "of 32)");
  row("tensors out of order", file_bytes(2, 0, "", info("a", {2}, 0, 32) + info("b", {2}, 0, 0), std::string(40, '\0')),
      "tensor \"a\": data offset 32, expected 0 (tensors follow each other in order, each padded to the alignment "
      "of 32)");
  row("data cut short", one_tensor(a8, "1234567"),
      "truncated: tensor \"a\" needs bytes 64 to 64 + 8 but the file has 71");
  row("data section past the end", "GGUF" + le32(3) + le64(1) + le64(0) + a8,
      "truncated: tensor \"a\" needs bytes 64 to 64 + 8 but the file has 57");
  row("trailing bytes", one_tensor(a8, data8 + std::string(25, '\0')),
      "1 trailing bytes after the last tensor's data");
  row("trailing bytes without tensors", file_bytes(0, 1, k7, "", "x"), "1 trailing bytes after the metadata");
}

void TestGguf::corruptFileRejected() {
  QFETCH(QByteArray, bytes);
  QFETCH(QString, message);
  const std::string got = format_error(
      [&] { GgufFile::from_bytes(std::vector<std::uint8_t>(bytes.begin(), bytes.end()), "case"); });
  QCOMPARE(QString::fromStdString(got), "case: " + message);
}

// Every prefix of a valid file short of its last tensor's data is refused
// (the final padding alone may be missing, as llama.cpp allows).
void TestGguf::truncatedAtEveryByte() {
  const std::vector<std::uint8_t> whole = read_bytes(kData / "metadata.gguf");
  const GgufFile f = GgufFile::from_bytes(whole, "whole");
  const GgufTensorInfo& last = f.tensors().back();
  const std::size_t needed = f.data_offset() + last.offset + last.nbytes;
  for (std::size_t n = 0; n < needed; ++n) {
    const std::string err =
        format_error([&] { GgufFile::from_bytes({whole.begin(), whole.begin() + n}, "cut"); });
    QVERIFY2(err.starts_with("cut: ") && err.find("truncated") != std::string::npos,
             (std::to_string(n) + ": " + err).c_str());
  }
  for (std::size_t n = needed; n <= whole.size(); ++n)
    QCOMPARE(GgufFile::from_bytes({whole.begin(), whole.begin() + n}, "cut").read_f32(last.name), f.read_f32(last.name));
}

void TestGguf::openReportsPath() {
  QTemporaryDir tmp;
  const fs::path p = fs::path(tmp.path().toStdString()) / "bad.gguf";
  QCOMPARE(format_error([&] { GgufFile::open(p); }), p.string() + ": cannot open: No such file or directory");
  write_text(p, "GGUF");
  QCOMPARE(format_error([&] { GgufFile::open(p); }),
           p.string() + ": truncated: the version at byte 4 needs 4 bytes but only 0 remain");
  QCOMPARE(format_error([&] { GgufFile::open(tmp.path().toStdString()); }),
           tmp.path().toStdString() + ": not a regular file");
}

void TestGguf::dequantizeGolden_data() {
  QTest::addColumn<QString>("type");
  for (const char* t : {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"})
    QTest::newRow(t) << QString(t);
}

// Bit for bit what gguf.dequantize gives on the same blocks.
void TestGguf::dequantizeGolden() {
  QFETCH(QString, type);
  const GgufFile f = GgufFile::open(kData / "quants.gguf");
  const std::string name = type.toStdString();
  const GgufTensorInfo& t = f.tensor(name);
  QCOMPARE(std::string(ggml_type_name(t.type)), name);
  QVERIFY(can_dequantize(t.type));
  QCOMPARE(t.shape(), (std::vector<std::int64_t>{2, 512}));
  const std::vector<float> want = f.read_f32(name + ".dequant");
  const std::vector<float> got = f.read_f32(name);
  QCOMPARE(bits(got), bits(want));
  std::vector<float> direct(t.numel());
  dequantize(t.type, f.bytes(t), direct);
  QCOMPARE(bits(direct), bits(want));
  QVERIFY_THROWS_EXCEPTION(std::invalid_argument, dequantize(t.type, f.bytes(t), std::span(direct).first(256 + 1)));
}

// The export quantisers give gguf.quantize's bytes: f16 ties to even and
// overflow, Q8_0's ties away from zero, a zero block.
void TestGguf::quantizeGolden() {
  const GgufFile f = GgufFile::open(kData / "quants.gguf");
  const std::vector<float> x = f.read_f32("quantize.input");
  for (GgmlType type : {GgmlType::F16, GgmlType::Q8_0}) {
    const auto want = f.bytes(f.tensor("quantize."s + ggml_type_name(type)));
    const std::vector<std::uint8_t> got = quantize(type, x);
    QVERIFY2(got.size() == want.size() && std::memcmp(got.data(), want.data(), got.size()) == 0, ggml_type_name(type));
  }
  const std::vector<std::uint8_t> f32 = quantize(GgmlType::F32, x);
  QVERIFY(std::memcmp(f32.data(), x.data(), f32.size()) == 0);
  QVERIFY(can_quantize(GgmlType::Q8_0) && !can_quantize(GgmlType::Q4_K));
  QVERIFY_THROWS_EXCEPTION(std::invalid_argument, quantize(GgmlType::Q4_K, x));
  QVERIFY_THROWS_EXCEPTION(std::invalid_argument, quantize(GgmlType::Q8_0, std::span(x).first(31)));
}

void TestGguf::unsupportedType() {
  const GgufFile f = GgufFile::open(kData / "quants.gguf");
  QCOMPARE(f.tensor("IQ2_XXS").type, GgmlType::IQ2_XXS);
  QVERIFY(!can_dequantize(GgmlType::IQ2_XXS));
  QCOMPARE(format_error([&] { f.read_f32("IQ2_XXS"); }),
           (kData / "quants.gguf").string() +
               ": tensor \"IQ2_XXS\" has type IQ2_XXS, which cannot be converted to float here (supported: F32, F16, "
               "Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K, BF16)");
  std::vector<float> out(10);
  QCOMPARE(format_error([&] { f.read_f32_into("F32", out); }),
           (kData / "quants.gguf").string() + ": tensor \"F32\" has 1024 elements but the destination holds 10");
}

void TestGguf::llamaConfig() {
  const ModelConfig c = io::read_gguf_config(GgufFile::open(kData / "tiny_llama.gguf"));
  QCOMPARE(c.name, "tiny-llama"s);
  QCOMPARE(c.layers, 2);
  QCOMPARE(c.hidden, 32);
  QCOMPARE(c.intermediate, 64);
  QCOMPARE(c.heads, 4);
  QCOMPARE(c.kv_heads, 2);
  QCOMPARE(c.vocab, 64);
  QCOMPARE(c.max_seq, 128);
  QCOMPARE(c.rope_theta, 10000.0);
  QCOMPARE(c.norm_eps, double{1e-5f});
  QCOMPARE(c.tie_embeddings, false);
  QCOMPARE(c.tokenizer, "gguf"s);
  QCOMPARE(c.rope_type, "default"s);
  QVERIFY(io::read_gguf_config(GgufFile::open(kData / "tiny_llama_mixed.gguf")).tie_embeddings);

  const ModelConfig l3 = io::read_gguf_config(GgufFile::open(kData / "tiny_llama3.gguf"));
  QCOMPARE(l3.rope_type, "llama3"s);
  QCOMPARE(l3.rope_theta, 100.0);
  QCOMPARE(l3.rope_factor, 8.0);
  QCOMPARE(l3.rope_low_freq_factor, 1.0);
  QCOMPARE(l3.rope_high_freq_factor, 4.0);
  QCOMPARE(l3.rope_original_max_pos, 64);

  // Without llama.vocab_size the token list gives the vocabulary.
  GgufMetadata m = llama_metadata();
  remove_key(m, "llama.vocab_size");
  std::vector<GgufValue> tokens(50, GgufValue::string("t"));
  m.emplace_back("tokenizer.ggml.tokens", GgufValue::array(GgufType::String, tokens));
  QCOMPARE(io::read_gguf_config(GgufFile::from_bytes(serialize_gguf(m, {}), "m")).vocab, 50);
}

void TestGguf::llamaConfigRefused_data() {
  QTest::addColumn<int>("index");
  QTest::addColumn<QString>("message");
  const char* rows[][2] = {
      {"other architecture",
       "architecture \"qwen2\" is not supported; this engine runs the \"llama\" architecture (LLaMA, Mistral, "
       "SmolLM, TinyLlama)"},
      {"no architecture", "no metadata key \"general.architecture\""},
      {"mixture of experts",
       "architecture \"llama\" with 8 experts (llama.expert_count) is not supported: this engine runs dense models"},
      {"bias tensors",
       "architecture \"llama\" with bias tensors (\"blk.0.attn_q.bias\") is not supported: the projections here "
       "have no bias"},
      {"LayerNorm",
       "architecture \"llama\" with LayerNorm (llama.attention.layer_norm_epsilon) is not supported: this engine "
       "normalises with RMSNorm"},
      {"linear rope scaling",
       "key \"llama.rope.scaling.type\" is \"linear\": only Llama-3 rotary scaling (a rope_freqs.weight tensor) is "
       "supported"},
      {"missing block_count", "no metadata key \"llama.block_count\""},
      {"block_count a string", "key \"llama.block_count\": expected u32, got string"},
      {"heads do not divide", "model.heads: hidden size 32 is not divisible by 3 heads"},
      {"no vocabulary size", "neither llama.vocab_size nor tokenizer.ggml.tokens gives the vocabulary size"},
      {"rope dimension", "key \"llama.rope.dimension_count\" is 4; this engine needs the head dimension "
                         "embedding_length / head_count = 8"},
      {"key length", "key \"llama.attention.key_length\" is 16; this engine needs the head dimension "
                     "embedding_length / head_count = 8"},
      {"rope_freqs one interpolated",
       "tensor \"rope_freqs.weight\" is not Llama-3 rotary scaling: it interpolates 1 frequencies, and two are "
       "needed to recover its parameters"},
      {"rope_freqs rising",
       "tensor \"rope_freqs.weight\" is not Llama-3 rotary scaling: its interpolated factors do not fall with "
       "wavelength"},
      {"rope_freqs off the curve",
       "tensor \"rope_freqs.weight\" is not Llama-3 rotary scaling: entry 0 is 0.500000 where factor 8.000000, "
       "high_freq_factor 4.000000 and original context 64 give 1.000000"},
  };
  for (int i = 0; i < static_cast<int>(std::size(rows)); ++i)
    QTest::newRow(rows[i][0]) << i << QString(rows[i][1]);
}

void TestGguf::llamaConfigRefused() {
  QFETCH(int, index);
  QFETCH(QString, message);
  GgufMetadata m = llama_metadata();
  std::vector<float> freqs;  // a rope_freqs.weight tensor when not empty
  std::vector<float> bias(32);
  std::vector<GgufTensorWrite> tensors;
  switch (index) {
    case 0: set_key(m, "general.architecture", GgufValue::string("qwen2")); break;
    case 1: remove_key(m, "general.architecture"); break;
    case 2: set_key(m, "llama.expert_count", GgufValue::u32(8)); break;
    case 3: tensors.push_back({"blk.0.attn_q.bias", GgmlType::F32, {32}, std::as_bytes(std::span(bias))}); break;
    case 4:
      remove_key(m, "llama.attention.layer_norm_rms_epsilon");
      set_key(m, "llama.attention.layer_norm_epsilon", GgufValue::f32(1e-5f));
      break;
    case 5: set_key(m, "llama.rope.scaling.type", GgufValue::string("linear")); break;
    case 6: remove_key(m, "llama.block_count"); break;
    case 7: set_key(m, "llama.block_count", GgufValue::string("2")); break;
    case 8: set_key(m, "llama.attention.head_count", GgufValue::u32(3)); break;
    case 9: remove_key(m, "llama.vocab_size"); break;
    case 10: set_key(m, "llama.rope.dimension_count", GgufValue::u32(4)); break;
    case 11: set_key(m, "llama.attention.key_length", GgufValue::u32(16)); break;
    case 12: freqs = {1, 1, 3, 8}; break;  // head_dim 8: four frequencies
    case 13: freqs = {1, 1.5f, 2, 8}; break;
    // factor 8, high_freq_factor 4, original 64, but the first entry is not 1
    case 14: freqs = {0.5f, 1.2939758f, 7.6673851f, 8}; break;
  }
  if (!freqs.empty()) {
    set_key(m, "llama.rope.freq_base", GgufValue::f32(100));
    tensors.push_back({"rope_freqs.weight", GgmlType::F32, {4}, std::as_bytes(std::span(freqs))});
  }
  const GgufFile f = GgufFile::from_bytes(serialize_gguf(m, tensors), "m.gguf");
  QCOMPARE(QString::fromStdString(format_error([&] { io::read_gguf_config(f); })), "m.gguf: " + message);
}

// The Llama-3 fields travel with a model: base checkpoints' config JSON
// (absent when unscaled, so existing recipe hashes stay), the HF export's
// rope_scaling, and validation.
void TestGguf::llama3ScalingKept() {
  const ModelConfig l3 = io::read_gguf_config(GgufFile::open(kData / "tiny_llama3.gguf"));
  QVERIFY(model_config_from_json(model_config_to_json(l3), "json") == l3);
  QVERIFY(model_config_to_json(ModelConfig{}).find("rope_scaling") == std::string::npos);

  Built b;
  b.model = std::make_unique<Model>(l3, Model::Mode::Frozen, DType::F32);
  b.model->materialize(be, b.ledger, 1, 4);
  QTemporaryDir tmp;
  io::export_hf_checkpoint(*b.model, tmp.path().toStdString());
  const nlohmann::json cfg = nlohmann::json::parse(read_text(fs::path(tmp.path().toStdString()) / "config.json"));
  QCOMPARE(cfg["rope_scaling"], (nlohmann::json{{"rope_type", "llama3"},
                                                {"factor", 8.0},
                                                {"low_freq_factor", 1.0},
                                                {"high_freq_factor", 4.0},
                                                {"original_max_position_embeddings", 64}}));

  ModelConfig bad = l3;
  bad.rope_type = "yarn";
  QVERIFY_THROWS_EXCEPTION(ConfigError, bad.validate());
  bad = l3;
  bad.rope_high_freq_factor = 0.5;
  QVERIFY_THROWS_EXCEPTION(ConfigError, bad.validate());
}

void TestGguf::permutation() {
  // One head of 4 rows: HF keeps the halves (0 1 | 2 3) apart, llama.cpp
  // interleaves them (0 2 1 3).
  std::vector<float> w = {0, 0, 1, 1, 2, 2, 3, 3};  // [4, 2]
  io::qk_rows_to_gguf(w, 1, 2);
  QCOMPARE(w, (std::vector<float>{0, 0, 2, 2, 1, 1, 3, 3}));
  io::qk_rows_from_gguf(w, 1, 2);
  QCOMPARE(w, (std::vector<float>{0, 0, 1, 1, 2, 2, 3, 3}));

  // Three heads of 8, as convert_hf_to_gguf.py's permute: row h*8 + s*4 + i
  // goes to h*8 + 2i + s.
  std::vector<float> hf(24 * 5);
  for (std::size_t k = 0; k < hf.size(); ++k) hf[k] = static_cast<float>(k);
  std::vector<float> g = hf;
  io::qk_rows_to_gguf(g, 3, 5);
  for (int h = 0; h < 3; ++h)
    for (int s = 0; s < 2; ++s)
      for (int i = 0; i < 4; ++i)
        for (int c = 0; c < 5; ++c) QCOMPARE(g[(h * 8 + 2 * i + s) * 5 + c], hf[(h * 8 + s * 4 + i) * 5 + c]);
  io::qk_rows_from_gguf(g, 3, 5);
  QCOMPARE(g, hf);
  QVERIFY_THROWS_EXCEPTION(std::invalid_argument, io::qk_rows_to_gguf(g, 5, 5));  // 24 rows, 5 heads
  QCOMPARE(io::gguf_tensor_name("model.layers.12.mlp.down_proj.weight"), "blk.12.ffn_down.weight"s);
  QVERIFY_THROWS_EXCEPTION(std::invalid_argument, io::gguf_tensor_name("model.layers.0.mlp.weight"));
}

void TestGguf::logitsMatchTransformers_data() {
  QTest::addColumn<QString>("stem");
  for (const char* s : {"tiny_llama", "tiny_llama.f16", "tiny_llama.q8_0", "tiny_llama_mixed", "tiny_llama3"})
    QTest::newRow(s) << QString(s);
}

// Loaded here, each file gives the logits transformers gives loading it
// (tiny_llama3: the HF model it was written from, since transformers' GGUF
// loader ignores rope_freqs.weight).
void TestGguf::logitsMatchTransformers() {
  QFETCH(QString, stem);
  const io::SafetensorsFile ref = io::SafetensorsFile::open(kData / "tiny_llama_logits.safetensors");
  const std::vector<std::int32_t> ids = read_i32(ref, "input_ids");
  const GgufFile f = GgufFile::open(kData / (stem.toStdString() + ".gguf"));
  auto b = load_model(be, f, 2, 8);
  const double rel = relative_diff(logits_for(*b->model, be, ids, 2, 8), as_double(ref.read_f32(stem.toStdString())));
  qInfo("%s: relative difference %.3g", qPrintable(stem), rel);
  QVERIFY2(rel < 1e-5, std::to_string(rel).c_str());
}

void TestGguf::importRejectsMismatch() {
  const fs::path path = kData / "tiny_llama.gguf";
  const GgufFile f = GgufFile::open(path);
  ModelConfig other = io::read_gguf_config(f);
  other.vocab = 60;
  other.tie_embeddings = true;
  Built b;
  b.model = std::make_unique<Model>(other, Model::Mode::Frozen, DType::F32);
  b.model->materialize(be, b.ledger, 1, 4);
  QCOMPARE(format_error([&] { io::import_gguf_weights(*b.model, f); }),
           path.string() +
               ": the file does not fit the model \"tiny-llama\":\n"
               "  - tensor \"token_embd.weight\" has shape [64, 32] vs expected [60, 32]\n"
               "  - unexpected tensor \"output.weight\"");

  // A tensor of a type that cannot be dequantised, and one missing.
  GgufMetadata m = f.metadata();
  std::vector<GgufTensorWrite> t = writes_of(f);
  const std::vector<std::uint8_t> iq(66 * 4);
  t[0] = {"token_embd.weight", GgmlType::IQ2_XXS, {256, 4}, std::as_bytes(std::span(iq))};
  std::erase_if(t, [](const GgufTensorWrite& w) { return w.name == "blk.1.ffn_up.weight"; });
  const GgufFile g = GgufFile::from_bytes(serialize_gguf(m, t), "g.gguf");
  Built c;
  c.model = std::make_unique<Model>(io::read_gguf_config(g), Model::Mode::Frozen, DType::F32);
  c.model->materialize(be, c.ledger, 1, 4);
  QCOMPARE(format_error([&] { io::import_gguf_weights(*c.model, g); }),
           "g.gguf: the file does not fit the model \"tiny-llama\":\n"
           "  - tensor \"token_embd.weight\" has shape [4, 256] vs expected [64, 32]\n"
           "  - tensor \"token_embd.weight\" has type IQ2_XXS, which cannot be converted to float here (supported: "
           "F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K, BF16)\n"
           "  - missing tensor \"blk.1.ffn_up.weight\" (expected shape [64, 32])"s);
}

void TestGguf::exportMatchesPythonPackage_data() {
  QTest::addColumn<int>("type");
  QTest::addColumn<QString>("golden");
  QTest::newRow("F32") << static_cast<int>(io::GgufExportType::F32) << "tiny_llama.gguf";
  QTest::newRow("F16") << static_cast<int>(io::GgufExportType::F16) << "tiny_llama.f16.gguf";
  QTest::newRow("Q8_0") << static_cast<int>(io::GgufExportType::Q8_0) << "tiny_llama.q8_0.gguf";
}

// Loading tiny_llama.gguf and exporting it gives the bytes gguf-py wrote
// from the HF model: Q/K permuted back, the same keys and quantisation.
// (make_gguf_golden.py checks transformers loads each of those files.)
void TestGguf::exportMatchesPythonPackage() {
  QFETCH(int, type);
  QFETCH(QString, golden);
  const GgufFile f = GgufFile::open(kData / "tiny_llama.gguf");
  auto b = load_model(be, f, 1, 4);
  QTemporaryDir tmp;
  const fs::path out = fs::path(tmp.path().toStdString()) / "export.gguf";
  io::export_gguf(*b->model, out, static_cast<io::GgufExportType>(type), io::gguf_tokenizer_metadata(f));
  QVERIFY(read_bytes(out) == read_bytes(kData / golden.toStdString()));
}

void TestGguf::exportRoundTrip_data() {
  QTest::addColumn<QString>("stem");
  QTest::addColumn<int>("type");
  QTest::newRow("llama3 F32") << "tiny_llama3" << static_cast<int>(io::GgufExportType::F32);
  QTest::newRow("tied Q8_0") << "tiny_llama_mixed" << static_cast<int>(io::GgufExportType::Q8_0);
}

// Tied embeddings and Llama-3 scaling survive an export: same config, and
// the same logits within the export's rounding.
void TestGguf::exportRoundTrip() {
  QFETCH(QString, stem);
  QFETCH(int, type);
  const GgufFile f = GgufFile::open(kData / (stem.toStdString() + ".gguf"));
  auto src = load_model(be, f, 2, 8);
  QTemporaryDir tmp;
  const fs::path out = fs::path(tmp.path().toStdString()) / "export.gguf";
  io::export_gguf(*src->model, out, static_cast<io::GgufExportType>(type));
  const GgufFile g = GgufFile::open(out);
  QVERIFY(io::read_gguf_config(g) == src->model->config());
  QCOMPARE(g.find_tensor("output.weight") == nullptr, src->model->config().tie_embeddings);
  if (f.find_tensor("rope_freqs.weight")) {
    const std::vector<float> want = f.read_f32("rope_freqs.weight"), got = g.read_f32("rope_freqs.weight");
    QCOMPARE(got.size(), want.size());
    for (std::size_t j = 0; j < got.size(); ++j) QVERIFY(std::abs(got[j] - want[j]) <= 1e-6f * want[j]);
  }
  auto back = load_model(be, g, 2, 8);
  const io::SafetensorsFile ref = io::SafetensorsFile::open(kData / "tiny_llama_logits.safetensors");
  const std::vector<std::int32_t> ids = read_i32(ref, "input_ids");
  const double rel = relative_diff(logits_for(*back->model, be, ids, 2, 8), logits_for(*src->model, be, ids, 2, 8));
  QVERIFY2(rel < (type == static_cast<int>(io::GgufExportType::F32) ? 1e-7 : 0.05), std::to_string(rel).c_str());
}

// A LoRA on every projection of a GGUF base, merged and exported: the file
// computes what the adapted model does (Q and K merged, then permuted).
void TestGguf::mergedExport() {
  const GgufFile f = GgufFile::open(kData / "tiny_llama.gguf");
  AdapterConfig ac;
  ac.r = 4;
  ac.targets = {kAllTargets.begin(), kAllTargets.end()};
  Built adapted;
  adapted.model = std::make_unique<Model>(io::read_gguf_config(f), model_mode_for(ac), DType::F32);
  attach_adapters(*adapted.model, ac);
  adapted.model->materialize(be, adapted.ledger, 2, 8);
  io::import_gguf_weights(*adapted.model, f);
  const TensorArena& params = adapted.model->trainable().params();
  for (std::size_t i = 0; i < params.entries().size(); ++i) {
    const Tensor t = params.slot_tensor(i);
    upload_values(be, t, normal_values(t.numel(), 0.2, 40 + i));
  }
  const io::SafetensorsFile ref = io::SafetensorsFile::open(kData / "tiny_llama_logits.safetensors");
  const std::vector<std::int32_t> ids = read_i32(ref, "input_ids");
  const std::vector<double> want = logits_for(*adapted.model, be, ids, 2, 8);
  QVERIFY(relative_diff(want, as_double(ref.read_f32("tiny_llama"))) > 0.01);  // the adapter matters

  QTemporaryDir tmp;
  const fs::path out = fs::path(tmp.path().toStdString()) / "merged.gguf";
  io::export_merged_gguf(*adapted.model, extract_adapter(*adapted.model, ac, "", ""), out, io::GgufExportType::F32,
                         io::gguf_tokenizer_metadata(f));
  const GgufFile g = GgufFile::open(out);
  QCOMPARE(g.get_strings("tokenizer.ggml.tokens"), f.get_strings("tokenizer.ggml.tokens"));
  auto merged = load_model(be, g, 2, 8);
  const double rel = relative_diff(logits_for(*merged->model, be, ids, 2, 8), want);
  QVERIFY2(rel < 1e-5, std::to_string(rel).c_str());
}

// SmolLM2-135M-Instruct (Q4_1, see the README's `fetch smollm2`) against
// transformers loading the same file.
void TestGguf::realSmolLM2() {
  const char* name = "SmolLM2-135M-Instruct.Q4_1.gguf";
  const char* env = std::getenv("LWB_SMOLLM2_GGUF");
  const fs::path path = env && *env ? fs::path(env) : user_data_dir() / "models" / name;
  if (!fs::exists(path))
    QSKIP(qPrintable(QString("%1 not found (set LWB_SMOLLM2_GGUF or put it in %2)")
                         .arg(name, QString::fromStdString((user_data_dir() / "models").string()))));
  QElapsedTimer timer;
  timer.start();
  const GgufFile f = GgufFile::open(path);
  const qint64 opened = timer.elapsed();
  const ModelConfig c = io::read_gguf_config(f);
  auto b = load_model(be, f, 1, 12);
  qInfo("SmolLM2-135M: file opened and validated in %lld ms, model loaded (dequantised to fp32) in %lld ms in all",
        static_cast<long long>(opened), static_cast<long long>(timer.elapsed()));

  QCOMPARE(c.layers, 30);
  QCOMPARE(c.hidden, 576);
  QCOMPARE(c.intermediate, 1536);
  QCOMPARE(c.heads, 9);
  QCOMPARE(c.kv_heads, 3);
  QCOMPARE(c.vocab, 49152);
  QCOMPARE(c.max_seq, 8192);
  QCOMPARE(c.rope_theta, 100000.0);
  QCOMPARE(c.tie_embeddings, true);
  std::map<GgmlType, int> types;
  for (const GgufTensorInfo& t : f.tensors()) ++types[t.type];
  QCOMPARE(types[GgmlType::Q4_1], 210);
  QCOMPARE(types[GgmlType::F32], 61);
  QCOMPARE(f.tensor("token_embd.weight").type, GgmlType::Q8_0);

  const io::SafetensorsFile ref = io::SafetensorsFile::open(kData / "smollm2_logits.safetensors");
  const std::vector<std::int32_t> ids = read_i32(ref, "input_ids"), vocab_ids = read_i32(ref, "vocab_ids");
  const std::vector<std::int32_t> argmax = read_i32(ref, "argmax");
  const std::vector<double> logits = logits_for(*b->model, be, ids, 1, 12);
  std::vector<double> sample;
  for (int t = 0; t < 12; ++t) {
    const double* row = logits.data() + t * c.vocab;
    for (std::int32_t v : vocab_ids) sample.push_back(row[v]);
    QCOMPARE(static_cast<std::int32_t>(std::max_element(row, row + c.vocab) - row), argmax[t]);
  }
  const double rel = relative_diff(sample, as_double(ref.read_f32("logits")));
  qInfo("SmolLM2-135M: logits vs transformers loading the same GGUF: relative difference %.3g", rel);
  QVERIFY2(rel < 1e-4, std::to_string(rel).c_str());
}

QTEST_APPLESS_MAIN(TestGguf)
#include "test_gguf.moc"
