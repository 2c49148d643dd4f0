#include "core/data/bpe_tokenizer.h"

#include <algorithm>

#include "core/common/errors.h"

namespace lwb::data {

namespace {

// A stretch of `text` and whether it is a delimiter of the split at hand.
struct Segment {
  std::size_t begin, end;
  bool match;
};

// Calls valid(b, e) for each stretch of well-formed UTF-8 in [begin, end) and
// invalid(i) for each byte between them: PCRE2 and ICU take only valid UTF-8,
// and invalid bytes (which Hugging Face cannot even take) pass around them.
template <class Valid, class Invalid>
void utf8_runs(std::string_view text, std::size_t begin, std::size_t end, Valid valid, Invalid invalid) {
  std::size_t i = begin;
  while (i < end) {
    std::size_t j = i;
    while (j < end) {
      const std::size_t len = utf8_length(text, j);
      if (len == 0 || j + len > end) break;
      j += len;
    }
    if (j > i) valid(i, j);
    if (j < end) invalid(j++);
    i = j;
  }
}

// The regex's matches and the gaps between them, covering [begin, end);
// invalid bytes join the gaps.
void find_segments(const Regex& re, std::string_view text, std::size_t begin, std::size_t end,
                   std::vector<Segment>& out) {
  const auto gap = [&](std::size_t b, std::size_t e) {
    if (b == e) return;
    if (!out.empty() && !out.back().match && out.back().end == b)
      out.back().end = e;
    else
      out.push_back({b, e, false});
  };
  std::vector<Regex::Match> matches;
  utf8_runs(
      text, begin, end,
      [&](std::size_t i, std::size_t j) {
        matches.clear();
        re.find_all(text.substr(i, j - i), matches);
        std::size_t prev = i;
        for (const Regex::Match& m : matches) {
          gap(prev, i + m.begin);
          out.push_back({i + m.begin, i + m.end, true});
          prev = i + m.end;
        }
        gap(prev, j);
      },
      [&](std::size_t i) { gap(i, i + 1); });
}

// Hugging Face's NormalizedString::split: which segments become pieces.
void apply_behavior(const std::vector<Segment>& segs, SplitBehavior behavior,
                    std::vector<std::pair<std::size_t, std::size_t>>& out) {
  std::size_t first = out.size();
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::isolated:
      for (const Segment& s : segs) out.emplace_back(s.begin, s.end);
      break;
    case SplitBehavior::removed:
      for (const Segment& s : segs)
        if (!s.match) out.emplace_back(s.begin, s.end);
      break;
    case SplitBehavior::contiguous:
      for (std::size_t k = 0; k < segs.size(); ++k) {
        if (k > 0 && segs[k].match == previous_match)
          out.back().second = segs[k].end;
        else
          out.emplace_back(segs[k].begin, segs[k].end);
        previous_match = segs[k].match;
      }
      break;
    case SplitBehavior::merged_with_previous:
      for (const Segment& s : segs) {
        if (s.match && !previous_match && out.size() > first)
          out.back().second = s.end;
        else
          out.emplace_back(s.begin, s.end);
        previous_match = s.match;
      }
      break;
    case SplitBehavior::merged_with_next:
      for (std::size_t k = segs.size(); k-- > 0;) {
        if (segs[k].match && !previous_match && out.size() > first)
          out.back().first = segs[k].begin;
        else
          out.emplace_back(segs[k].begin, segs[k].end);
        previous_match = segs[k].match;
      }
      std::reverse(out.begin() + static_cast<std::ptrdiff_t>(first), out.end());
      break;
  }
}

// The pieces of one fragment: spans of `text`.
struct Pieces {
  std::string text;
  std::vector<std::pair<std::size_t, std::size_t>> spans;
};

void replace_all(std::string_view in, std::string_view what, std::string_view with, std::string& out) {
  out.clear();
  std::size_t i = 0;
  while (true) {
    const std::size_t k = what.empty() ? std::string_view::npos : in.find(what, i);
    if (k == std::string_view::npos) break;
    out.append(in.substr(i, k - i));
    out.append(with);
    i = k + what.size();
  }
  out.append(in.substr(i));
}

void apply_step(const PreTokenizerStep& step, bool at_start, Pieces& p, Pieces& next) {
  next.text.clear();
  next.spans.clear();
  if (step.kind == PreTokenizerStep::Kind::split) {
    std::vector<Segment> segs;
    for (const auto& [b, e] : p.spans) {
      segs.clear();
      find_segments(*step.regex, p.text, b, e, segs);
      if (step.invert)
        for (Segment& s : segs) s.match = !s.match;
      apply_behavior(segs, step.behavior, next.spans);
    }
    next.text.swap(p.text);
  } else {
    std::string piece;
    for (std::size_t k = 0; k < p.spans.size(); ++k) {
      const auto [b, e] = p.spans[k];
      const std::string_view in = std::string_view(p.text).substr(b, e - b);
      const std::size_t start = next.text.size();
      if (step.kind == PreTokenizerStep::Kind::prefix_space) {
        if (in.empty() || in[0] != ' ') next.text += ' ';
        next.text += in;
        next.spans.emplace_back(start, next.text.size());
        continue;
      }
      replace_all(in, " ", step.replacement, piece);
      const bool prepend = step.prepend == PrependScheme::always ||
                           (step.prepend == PrependScheme::first && k == 0 && at_start);
      if (prepend && !piece.empty() && piece.compare(0, step.replacement.size(), step.replacement) != 0)
        next.text += step.replacement;
      next.text += piece;
      if (!step.split_words) {
        next.spans.emplace_back(start, next.text.size());
        continue;
      }
      // Each replacement opens a new piece (MergedWithNext).
      std::size_t word = start;
      for (std::size_t i = start + 1; i < next.text.size(); ++i)
        if (next.text.compare(i, step.replacement.size(), step.replacement) == 0) {
          next.spans.emplace_back(word, i);
          word = i;
        }
      next.spans.emplace_back(word, next.text.size());
    }
  }
  std::erase_if(next.spans, [](const auto& s) { return s.first == s.second; });
  std::swap(p, next);
}

}  // namespace

BpeTokenizer::BpeTokenizer(std::string name, BpeSpec spec)
    : VocabTokenizer(std::move(name), std::move(spec.vocab)),
      normalizer_(std::move(spec.normalizer)),
      pre_tokenizer_(std::move(spec.pre_tokenizer)),
      byte_level_(spec.byte_level),
      byte_fallback_(spec.byte_fallback),
      fuse_unk_(spec.fuse_unk),
      ignore_merges_(spec.ignore_merges) {
  const std::string& source = this->spec().source;
  for (int b = 0; b < 256; ++b) {
    std::string piece;
    if (byte_level_)
      utf8_append(piece, byte_to_unicode(static_cast<unsigned char>(b)));
    else
      piece = byte_piece(static_cast<unsigned char>(b));
    byte_ids_[b] = token_to_id(piece);
  }

  std::vector<std::pair<std::uint64_t, MergeTable::Merge>> entries;
  if (spec.scores.empty()) {
    entries.reserve(spec.merges.size());
    std::string joined;
    for (std::size_t r = 0; r < spec.merges.size(); ++r) {
      const auto& [a, b] = spec.merges[r];
      joined = a + b;
      const std::int32_t ia = token_to_id(a), ib = token_to_id(b), im = token_to_id(joined);
      const std::pair<std::int32_t, const std::string*> parts[] = {{ia, &a}, {ib, &b}, {im, &joined}};
      for (const auto& [id, piece] : parts)
        if (id < 0)
          throw FormatError(source, "merge " + std::to_string(r) + " (\"" + a + " " + b + "\"): \"" + *piece +
                                        "\" is not in the vocabulary");
      entries.push_back({MergeTable::key(ia, ib), {static_cast<std::int32_t>(r), im}});
    }
    merges_.build(entries);
    return;
  }

  // SentencePiece BPE merges the adjacent pair whose concatenation scores
  // best. Every token that splits into two tokens is such a merge; ranking
  // the scores turns this into the same table as ranked merges (equal
  // scores share a rank and fall back to the leftmost pair, as llama.cpp).
  const std::size_t n = this->spec().pieces.size();
  if (spec.scores.size() != n)
    throw FormatError(source, std::to_string(spec.scores.size()) + " scores for " + std::to_string(n) + " tokens");
  std::vector<float> order = spec.scores;
  std::sort(order.begin(), order.end(), std::greater<>());
  order.erase(std::unique(order.begin(), order.end()), order.end());
  for (std::size_t t = 0; t < n; ++t) {
    if (!spec.mergeable.empty() && !spec.mergeable[t]) continue;
    const std::string& piece = this->spec().pieces[t];
    const auto rank = static_cast<std::int32_t>(
        std::lower_bound(order.begin(), order.end(), spec.scores[t], std::greater<>()) - order.begin());
    for (std::size_t k = utf8_length(piece, 0); k > 0 && k < piece.size();) {
      const std::int32_t l = token_to_id(std::string_view(piece).substr(0, k));
      const std::int32_t r = token_to_id(std::string_view(piece).substr(k));
      if (l >= 0 && r >= 0) entries.push_back({MergeTable::key(l, r), {rank, static_cast<std::int32_t>(t)}});
      const std::size_t len = utf8_length(piece, k);
      k += len ? len : 1;
    }
  }
  merges_.build(entries);
}

void BpeTokenizer::normalize(std::string_view text, std::string& out) const {
  out.assign(text);
  std::string tmp;
  std::vector<Segment> segments;
  for (const NormalizerStep& step : normalizer_) {
    switch (step.kind) {
      case NormalizerStep::Kind::unicode: {
        tmp.clear();
        std::string part;
        utf8_runs(
            out, 0, out.size(),
            [&](std::size_t i, std::size_t j) {
              data::normalize(step.form, std::string_view(out).substr(i, j - i), part);
              tmp += part;
            },
            [&](std::size_t i) { tmp += out[i]; });
        break;
      }
      case NormalizerStep::Kind::prepend:
        if (out.empty()) continue;
        tmp = step.text + out;
        break;
      case NormalizerStep::Kind::replace:
        if (!step.regex) {
          replace_all(out, step.text, step.with, tmp);
          break;
        }
        tmp.clear();
        segments.clear();
        find_segments(*step.regex, out, 0, out.size(), segments);
        for (const Segment& seg : segments)
          tmp += seg.match ? std::string_view(step.with) : std::string_view(out).substr(seg.begin, seg.end - seg.begin);
        break;
    }
    out.swap(tmp);
  }
}

// A candidate merge of the symbols at `left` and `right`; stale once either
// symbol has changed since it was queued.
struct Candidate {
  std::int32_t rank, left, right, left_id, right_id, merged;
  bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
};

struct BpeTokenizer::Scratch {
  std::vector<std::int32_t> symbols, next, prev;
  std::vector<Candidate> queue;
  std::string mapped;
};

void BpeTokenizer::encode_text(std::string_view text, bool at_start, std::vector<std::int32_t>& out) const {
  Pieces p, next;
  normalize(text, p.text);
  if (!p.text.empty()) p.spans.emplace_back(0, p.text.size());
  for (const PreTokenizerStep& step : pre_tokenizer_) apply_step(step, at_start, p, next);
  Scratch scratch;
  for (const auto& [b, e] : p.spans) encode_piece(std::string_view(p.text).substr(b, e - b), scratch, out);
}

void BpeTokenizer::encode_piece(std::string_view piece, Scratch& s, std::vector<std::int32_t>& out) const {
  std::vector<std::int32_t>& symbols = s.symbols;
  symbols.clear();
  const std::int32_t unk = spec().unk;
  if (byte_level_) {
    if (ignore_merges_) {
      s.mapped.clear();
      for (unsigned char c : piece) utf8_append(s.mapped, byte_to_unicode(c));
      if (const std::int32_t id = token_to_id(s.mapped); id >= 0) {
        out.push_back(id);
        return;
      }
    }
    for (unsigned char c : piece) {
      const std::int32_t id = byte_ids_[c] >= 0 ? byte_ids_[c] : unk;
      if (id >= 0) symbols.push_back(id);
    }
  } else {
    if (ignore_merges_)
      if (const std::int32_t id = token_to_id(piece); id >= 0) {
        out.push_back(id);
        return;
      }
    bool previous_unknown = false;
    for (std::size_t i = 0; i < piece.size();) {
      const std::size_t valid = utf8_length(piece, i);
      const std::size_t len = valid ? valid : 1;
      const std::int32_t id = valid ? token_to_id(piece.substr(i, len)) : -1;
      if (id >= 0) {
        symbols.push_back(id);
        previous_unknown = false;
      } else if (byte_fallback_ && std::all_of(piece.begin() + static_cast<std::ptrdiff_t>(i),
                                               piece.begin() + static_cast<std::ptrdiff_t>(i + len),
                                               [&](char c) { return byte_ids_[static_cast<unsigned char>(c)] >= 0; })) {
        for (std::size_t k = i; k < i + len; ++k) symbols.push_back(byte_ids_[static_cast<unsigned char>(piece[k])]);
        previous_unknown = false;
      } else if (unk >= 0) {
        if (!(fuse_unk_ && previous_unknown)) symbols.push_back(unk);
        previous_unknown = true;
      }
      i += len;
    }
  }
  merge(s);
  out.insert(out.end(), symbols.begin(), symbols.end());
}

void BpeTokenizer::merge(Scratch& s) const {
  std::vector<std::int32_t>& symbols = s.symbols;
  if (symbols.size() < 2 || merges_.empty()) return;
  // A doubly linked list over the symbols and a queue of candidate merges,
  // lowest rank first, then leftmost (Hugging Face's and llama.cpp's order).
  const auto n = static_cast<std::int32_t>(symbols.size());
  s.next.resize(symbols.size());
  s.prev.resize(symbols.size());
  for (std::int32_t i = 0; i < n; ++i) {
    s.next[static_cast<std::size_t>(i)] = i + 1 < n ? i + 1 : -1;
    s.prev[static_cast<std::size_t>(i)] = i - 1;
  }
  std::vector<Candidate>& queue = s.queue;
  queue.clear();
  const auto consider = [&](std::int32_t l, std::int32_t r) {
    if (l < 0 || r < 0) return;
    const std::int32_t a = symbols[static_cast<std::size_t>(l)], b = symbols[static_cast<std::size_t>(r)];
    if (const MergeTable::Merge* m = merges_.find(a, b)) {
      queue.push_back({m->rank, l, r, a, b, m->id});
      std::push_heap(queue.begin(), queue.end(), std::greater<>());
    }
  };
  for (std::int32_t i = 0; i + 1 < n; ++i) consider(i, i + 1);
  while (!queue.empty()) {
    std::pop_heap(queue.begin(), queue.end(), std::greater<>());
    const Candidate c = queue.back();
    queue.pop_back();
    const auto l = static_cast<std::size_t>(c.left), r = static_cast<std::size_t>(c.right);
    if (symbols[l] != c.left_id || s.next[l] != c.right || symbols[r] != c.right_id) continue;
    symbols[l] = c.merged;
    symbols[r] = -1;
    s.next[l] = s.next[r];
    if (s.next[r] >= 0) s.prev[static_cast<std::size_t>(s.next[r])] = c.left;
    consider(s.prev[l], c.left);
    consider(c.left, s.next[l]);
  }
  std::erase(symbols, -1);
}

// ---- MergeTable

namespace {
constexpr std::uint64_t kFree = ~std::uint64_t{0};  // no pair of ids >= 0 has this key
}

std::size_t MergeTable::slot(std::uint64_t key) const {
  std::size_t i = static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> 20) & mask_;
  while (keys_[i] != key && keys_[i] != kFree) i = (i + 1) & mask_;
  return i;
}

void MergeTable::build(const std::vector<std::pair<std::uint64_t, Merge>>& entries) {
  std::size_t size = 16;
  while (size < entries.size() * 2) size *= 2;  // at most half full
  keys_.assign(size, kFree);
  values_.assign(size, {});
  mask_ = size - 1;
  for (const auto& [key, merge] : entries) {
    const std::size_t i = slot(key);
    keys_[i] = key;
    values_[i] = merge;
  }
}

const MergeTable::Merge* MergeTable::find(std::int32_t left, std::int32_t right) const {
  if (keys_.empty()) return nullptr;
  const std::size_t i = slot(key(left, right));
  return keys_[i] == kFree ? nullptr : &values_[i];
}

}  // namespace lwb::data
