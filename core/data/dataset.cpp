#include "core/data/dataset.h"

#include <algorithm>
#include <cstring>

#include "core/common/errors.h"
#include "core/data/data_file.h"
#include "core/tensor/rng.h"

namespace lwb::data {

std::int32_t Dataset::max_tokens() const {
  std::size_t m = 0;
  for (const auto* split : {&train, &validation, &heldout})
    for (const Example& e : *split) m = std::max(m, e.tokens.size());
  return static_cast<std::int32_t>(m);
}

std::size_t Example::scored_count() const {
  if (scored.empty()) return tokens.empty() ? 0 : tokens.size() - 1;
  std::size_t n = 0;
  for (std::size_t t = 1; t < scored.size(); ++t) n += scored[t] != 0;
  return n;
}

std::size_t Example::prompt_length() const {
  for (std::size_t t = 1; t < scored.size(); ++t)
    if (scored[t]) return t;
  return 0;
}

Example make_example(const Tokenizer& tok, std::string_view prompt, std::string_view completion) {
  Example e;
  e.tokens = tok.encode(prompt, {.add_special = true});
  const std::size_t prompt_len = e.tokens.size();
  const auto c = tok.encode(completion);
  e.tokens.insert(e.tokens.end(), c.begin(), c.end());
  if (tok.eos() >= 0) e.tokens.push_back(tok.eos());
  e.scored.assign(e.tokens.size(), 1);
  std::fill(e.scored.begin(), e.scored.begin() + static_cast<std::ptrdiff_t>(prompt_len), 0);
  return e;
}

std::int32_t batch_pad_id(const Tokenizer& tok) {
  if (tok.pad() >= 0) return tok.pad();
  return tok.eos() >= 0 ? tok.eos() : 0;
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
    std::int32_t* in = out.inputs.data() + r * T;
    std::int32_t* tg = out.targets.data() + r * T;
    for (int t = 0; t + 1 < len; ++t) {
      in[t] = e.tokens[static_cast<std::size_t>(t)];
      if (e.is_scored(static_cast<std::size_t>(t) + 1)) {
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

Dataset load_text_corpus(const std::filesystem::path& file, const Tokenizer& tok, int T, double heldout_fraction) {
  return text_dataset(read_data_file(file), tok, T, heldout_fraction, "text:" + file.string());
}

void split_rows(std::vector<Example> rows, double heldout_fraction, std::uint64_t seed, Dataset& d) {
  if (rows.size() == 1) {
    d.train = rows;
    d.heldout = rows;  // a single row can only be checked against itself
    return;
  }
  std::vector<std::size_t> order(rows.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  SplitMix rng(seed);
  for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  const std::size_t held = std::clamp<std::size_t>(
      static_cast<std::size_t>(static_cast<double>(rows.size()) * heldout_fraction), 1, rows.size() - 1);
  for (std::size_t i = 0; i < order.size(); ++i)
    (i < held ? d.heldout : d.train).push_back(std::move(rows[order[i]]));
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
