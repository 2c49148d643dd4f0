#include "core/data/dataset.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/common/errors.h"
#include "core/tensor/rng.h"

namespace lwb::data {

std::int32_t Dataset::max_tokens() const {
  std::size_t m = 0;
  for (const auto* split : {&train, &validation, &heldout})
    for (const Example& e : *split) m = std::max(m, e.tokens.size());
  return static_cast<std::int32_t>(m);
}

Example make_example(const Tokenizer& tok, std::string_view prompt, std::string_view completion) {
  Example e;
  e.tokens.push_back(tok.bos());
  const auto p = tok.encode(prompt), c = tok.encode(completion);
  e.tokens.insert(e.tokens.end(), p.begin(), p.end());
  e.prompt_len = static_cast<std::int32_t>(e.tokens.size());
  e.tokens.insert(e.tokens.end(), c.begin(), c.end());
  e.tokens.push_back(tok.eos());
  return e;
}

namespace {

void check_fits(const Example& e, int T) {
  if (e.tokens.size() > static_cast<std::size_t>(T) + 1)
    throw DataError("an example has " + std::to_string(e.tokens.size()) + " tokens but train.seq_len = " +
                    std::to_string(T) + " allows at most " + std::to_string(T + 1));
}

// Fills `out` with the examples row(0) .. row(n - 1), so the sampler can pass
// its shuffled picks without copying them. assign() keeps the capacity, so a
// batch of the same shape never reallocates.
template <class RowAt>
void fill_batch(std::size_t n, RowAt row, int B, int T, std::int32_t pad_id, Batch& out) {
  if (n > static_cast<std::size_t>(B))
    throw DataError(std::to_string(n) + " examples do not fit a batch of " + std::to_string(B) + " rows");
  out.B = B;
  out.T = T;
  out.inputs.assign(static_cast<std::size_t>(B) * T, pad_id);
  out.targets.assign(static_cast<std::size_t>(B) * T, -1);
  out.n_targets = 0;
  out.rows = static_cast<std::int32_t>(n);
  for (std::size_t r = 0; r < n; ++r) {
    const Example& e = row(r);
    check_fits(e, T);
    const int len = static_cast<int>(e.tokens.size());
    const int first_scored = std::max(e.prompt_len, 1);
    std::int32_t* in = out.inputs.data() + r * T;
    std::int32_t* tg = out.targets.data() + r * T;
    for (int t = 0; t + 1 < len; ++t) {
      in[t] = e.tokens[static_cast<std::size_t>(t)];
      if (t + 1 >= first_scored) {
        tg[t] = e.tokens[static_cast<std::size_t>(t) + 1];
        ++out.n_targets;
      }
    }
  }
}

}  // namespace

void make_batch(std::span<const Example> rows, int B, int T, std::int32_t pad_id, Batch& out) {
  fill_batch(rows.size(), [&](std::size_t r) -> const Example& { return rows[r]; }, B, T, pad_id, out);
}

BatchSampler::BatchSampler(const std::vector<Example>& split, int B, int T, std::int32_t pad_id,
                           std::uint64_t seed)
    : split_(split), B_(B), T_(T), pad_(pad_id), seed_(seed) {
  if (split.empty()) throw DataError("cannot sample batches from an empty split");
  // Checked here so that a too-long example stops the run before it starts,
  // not at whichever step first draws it.
  for (const Example& e : split) check_fits(e, T);
  order_.resize(split.size());
  picks_.reserve(static_cast<std::size_t>(B));
  shuffle();
}

// Fisher-Yates over SplitMix, reseeded per epoch: the order depends only on
// (seed, epoch), on every platform.
void BatchSampler::shuffle() {
  for (std::size_t i = 0; i < order_.size(); ++i) order_[i] = static_cast<std::uint32_t>(i);
  SplitMix rng(derive_seed(seed_, static_cast<std::uint64_t>(epoch_)));
  for (std::size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[rng.below(i)]);
  cursor_ = 0;
}

void BatchSampler::next(Batch& out) {
  picks_.clear();
  while (static_cast<int>(picks_.size()) < B_) {
    if (cursor_ == order_.size()) {
      ++epoch_;
      shuffle();
    }
    picks_.push_back(order_[cursor_++]);
  }
  fill_batch(picks_.size(), [&](std::size_t r) -> const Example& { return split_[picks_[r]]; }, B_, T_, pad_, out);
}

Dataset text_dataset(std::string_view text, const Tokenizer& tok, int T, double heldout_fraction,
                     std::string name) {
  const std::vector<std::int32_t> ids = tok.encode(text);
  const std::size_t chunk = static_cast<std::size_t>(T) + 1;
  const std::size_t chunks = ids.size() / chunk;
  if (chunks < 2)
    throw DataError(name + ": " + std::to_string(ids.size()) + " tokens make fewer than two chunks of " +
                    std::to_string(chunk) + "; need more text or a shorter train.seq_len");
  const std::size_t held =
      std::clamp<std::size_t>(static_cast<std::size_t>(static_cast<double>(chunks) * heldout_fraction), 1, chunks - 1);
  Dataset d;
  d.name = std::move(name);
  for (std::size_t c = 0; c < chunks; ++c) {
    Example e;
    e.tokens.assign(ids.begin() + static_cast<std::ptrdiff_t>(c * chunk),
                    ids.begin() + static_cast<std::ptrdiff_t>((c + 1) * chunk));
    (c + held < chunks ? d.train : d.heldout).push_back(std::move(e));
  }
  return d;
}

namespace {

std::string mib(std::size_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

// A data file read in blocks, never past kMaxDataFileBytes.
class DataFile {
 public:
  explicit DataFile(const std::filesystem::path& file) : name_(file.string()) {
    std::error_code ec;
    if (!std::filesystem::exists(file, ec)) throw FormatError(name_, "no such file");
    if (std::filesystem::is_directory(file, ec)) throw FormatError(name_, "is a folder, expected a file");
    in_.open(file, std::ios::binary);
    if (!in_) throw FormatError(name_, "cannot open the file for reading");
  }
  // Up to buf.size() bytes; 0 at the end.
  std::size_t read(std::span<char> buf) {
    in_.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in_.bad()) throw FormatError(name_, "read error");
    const auto n = static_cast<std::size_t>(in_.gcount());
    total_ += n;
    if (total_ > kMaxDataFileBytes)
      throw FormatError(name_, "stopped reading after " + mib(kMaxDataFileBytes) +
                                   ": data files are held in memory whole, so they may have at most that much "
                                   "(is it a device or a pipe that never ends?)");
    return n;
  }

 private:
  std::string name_;
  std::ifstream in_;
  std::size_t total_ = 0;
};

std::string read_file(const std::filesystem::path& file) {
  DataFile in(file);
  std::string text;
  std::vector<char> buf(1 << 16);
  while (const std::size_t n = in.read(buf)) text.append(buf.data(), n);
  return text;
}

// Lines of a data file; a line longer than its limit is read past, not kept.
class LineReader {
 public:
  explicit LineReader(const std::filesystem::path& file) : in_(file) {}
  // The next line (without '\n') into `line` and its length in bytes; false
  // at the end. When length > max_bytes, `line` is left empty.
  bool next(std::string& line, std::size_t& length, std::size_t max_bytes) {
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
  std::size_t number() const { return number_; }  // of the line last returned, 1-based

 private:
  DataFile in_;
  std::vector<char> buf_ = std::vector<char>(1 << 16);
  std::size_t pos_ = 0, end_ = 0, number_ = 0;
};

// "lines 4, 9, 12 and 3 more"
std::string line_list(const std::vector<std::size_t>& lines) {
  constexpr std::size_t kShown = 5;
  std::string s = lines.size() == 1 ? "line " : "lines ";
  for (std::size_t i = 0; i < std::min(lines.size(), kShown); ++i)
    s += (i ? ", " : "") + std::to_string(lines[i]);
  if (lines.size() > kShown) s += " and " + std::to_string(lines.size() - kShown) + " more";
  return s;
}

// nlohmann says "[json.exception.parse_error.101] parse error at line 1,
// column 9: syntax error ..."; its line is always 1 here, so keep the column
// and the reason.
std::string json_message(const nlohmann::json::parse_error& e) {
  const std::string what = e.what();
  const auto reason = what.find(": ");
  return "at column " + std::to_string(e.byte) + ": " +
         (reason == std::string::npos ? what : what.substr(reason + 2));
}
}  // namespace

Dataset load_text_corpus(const std::filesystem::path& file, const Tokenizer& tok, int T, double heldout_fraction) {
  return text_dataset(read_file(file), tok, T, heldout_fraction, "text:" + file.string());
}

std::vector<Example> read_jsonl_examples(const std::filesystem::path& file, const Tokenizer& tok,
                                         const JsonlFields& fields, int max_tokens, std::vector<std::string>& notes) {
  LineReader lines(file);
  std::vector<Example> rows;
  std::vector<std::size_t> too_long, too_big;
  std::size_t nonblank = 0, length = 0;
  std::string line;
  while (lines.next(line, length, kMaxJsonlLineBytes)) {
    if (length > kMaxJsonlLineBytes) {
      ++nonblank;
      too_big.push_back(lines.number());
      continue;
    }
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    ++nonblank;
    const std::string where = file.string() + ":" + std::to_string(lines.number());
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      throw FormatError(where, "not valid JSON " + json_message(e));
    }
    if (!j.is_object()) throw FormatError(where, "expected a JSON object per line");
    for (const std::string* f : {&fields.prompt, &fields.completion}) {
      if (!j.contains(*f)) throw FormatError(where, "missing string field \"" + *f + "\"");
      if (!j[*f].is_string())
        throw FormatError(where, "missing string field \"" + *f + "\" (got " + std::string(j[*f].type_name()) + ")");
    }
    Example e = make_example(tok, j[fields.prompt].get<std::string>(), j[fields.completion].get<std::string>());
    if (static_cast<int>(e.tokens.size()) > max_tokens) {
      too_long.push_back(lines.number());
      continue;
    }
    rows.push_back(std::move(e));
  }
  if (!too_big.empty())
    notes.push_back(file.string() + ": " + std::to_string(too_big.size()) + " row(s) over " + mib(kMaxJsonlLineBytes) +
                    " skipped unread (" + line_list(too_big) + ")");
  if (!too_long.empty())
    notes.push_back(file.string() + ": " + std::to_string(too_long.size()) + " row(s) longer than " +
                    std::to_string(max_tokens) + " tokens skipped (" + line_list(too_long) +
                    "); a longer train.seq_len keeps them");
  if (rows.empty())
    throw DataError(file.string() + ": no usable rows (" + std::to_string(nonblank) + " rows, " +
                    std::to_string(too_long.size() + too_big.size()) + " longer than " + std::to_string(max_tokens) +
                    " tokens)");
  return rows;
}

Dataset load_jsonl(const std::filesystem::path& file, const Tokenizer& tok, const JsonlFields& fields, int max_tokens,
                   double heldout_fraction, std::uint64_t seed) {
  Dataset d;
  std::vector<Example> rows = read_jsonl_examples(file, tok, fields, max_tokens, d.notes);
  d.name = "jsonl:" + file.string();
  d.has_completions = true;
  if (rows.size() == 1) {
    d.train = rows;
    d.heldout = rows;  // a single row can only be checked against itself
    return d;
  }
  std::vector<std::size_t> order(rows.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  SplitMix rng(seed);
  for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  const std::size_t held = std::clamp<std::size_t>(
      static_cast<std::size_t>(static_cast<double>(rows.size()) * heldout_fraction), 1, rows.size() - 1);
  for (std::size_t i = 0; i < order.size(); ++i)
    (i < held ? d.heldout : d.train).push_back(std::move(rows[order[i]]));
  return d;
}

void carve_validation(Dataset& d, int n, std::uint64_t seed) {
  if (n <= 0) return;
  if (d.train.size() <= static_cast<std::size_t>(n))
    throw DataError(d.name + ": " + std::to_string(d.train.size()) + " training examples cannot give " +
                    std::to_string(n) + " to a validation split and keep any to train on (data.n_validation)");
  // A seeded partial Fisher-Yates: the last n positions become validation.
  SplitMix rng(derive_seed(seed, 0x7A11D));
  for (std::size_t i = d.train.size(); i > d.train.size() - static_cast<std::size_t>(n); --i)
    std::swap(d.train[i - 1], d.train[rng.below(i)]);
  d.validation.assign(std::make_move_iterator(d.train.end() - n), std::make_move_iterator(d.train.end()));
  d.train.resize(d.train.size() - static_cast<std::size_t>(n));
}

void trim_padding(Batch& b, std::int32_t pad) {
  int used = 1;
  for (int r = 0; r < b.B; ++r)
    for (int t = b.T - 1; t >= used; --t) {
      const std::size_t i = static_cast<std::size_t>(r) * b.T + t;
      if (b.inputs[i] != pad || b.targets[i] >= 0) {
        used = t + 1;
        break;
      }
    }
  if (used == b.T) return;
  for (int r = 0; r < b.B; ++r)
    for (int t = 0; t < used; ++t) {
      b.inputs[static_cast<std::size_t>(r) * used + t] = b.inputs[static_cast<std::size_t>(r) * b.T + t];
      b.targets[static_cast<std::size_t>(r) * used + t] = b.targets[static_cast<std::size_t>(r) * b.T + t];
    }
  b.T = used;
}

}  // namespace lwb::data
