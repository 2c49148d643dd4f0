#include "core/data/data_preview.h"

#include <algorithm>
#include <cstdio>

namespace lwb::data {

namespace {

bool valid_utf8_at(std::string_view s, std::size_t i, std::size_t& len) {
  const auto c = static_cast<unsigned char>(s[i]);
  len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (len == 0 || i + len > s.size()) return false;
  for (std::size_t k = 1; k < len; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
  return true;
}

std::string summary_of(const std::string& name, std::size_t rows, const TokenCountStats& s) {
  return name + ": " + std::to_string(rows) + " example(s); tokens per example min " + std::to_string(s.min) +
         ", median " + std::to_string(s.median) + ", mean " + std::to_string(static_cast<long long>(s.mean + 0.5)) +
         ", 95th percentile " + std::to_string(s.p95) + ", max " + std::to_string(s.max);
}

}  // namespace

TokenCountStats token_count_stats(std::vector<std::size_t> counts) {
  TokenCountStats s;
  s.count = counts.size();
  if (counts.empty()) return s;
  std::sort(counts.begin(), counts.end());
  s.min = counts.front();
  s.max = counts.back();
  s.median = counts[counts.size() / 2];
  s.p95 = counts[std::min(counts.size() - 1, counts.size() * 95 / 100)];
  double sum = 0;
  for (std::size_t c : counts) sum += static_cast<double>(c);
  s.mean = sum / static_cast<double>(counts.size());
  return s;
}

DataPreview preview_jsonl(const std::filesystem::path& file, const Tokenizer& tok, const JsonlOptions& options,
                          int max_tokens, std::size_t n) {
  JsonlRead read = read_jsonl(file, tok, options, max_tokens, n);
  DataPreview p;
  p.lengths = token_count_stats(read.token_counts);
  p.summary = summary_of(file.string(), read.token_counts.size(), p.lengths) + "; format " +
              jsonl_format_name(read.format) + ", " +
              (options.chat ? "chat template " + options.chat->source() : std::string("no chat template")) +
              ", loss on " + (options.loss_all ? "every token" : "the completion / assistant tokens") +
              ", at most " + std::to_string(max_tokens) + " tokens per example (train.seq_len + 1)";
  for (JsonlRead::Row& r : read.rows) {
    ++p.kept;
    p.total_tokens += r.rendered.example.tokens.size();
    p.scored_tokens += r.rendered.example.scored_count();
    if (p.examples.size() < n)
      p.examples.push_back({"line " + std::to_string(r.line), std::move(r.rendered.text),
                            std::move(r.rendered.example), r.truncated});
  }
  p.notes = read.notes();
  return p;
}

DataPreview preview_examples(const std::string& name, const std::vector<Example>& examples, const Tokenizer& tok,
                             std::size_t n) {
  DataPreview p;
  std::vector<std::size_t> counts;
  for (std::size_t i = 0; i < examples.size(); ++i) {
    const Example& e = examples[i];
    counts.push_back(e.tokens.size());
    ++p.kept;
    p.total_tokens += e.tokens.size();
    p.scored_tokens += e.scored_count();
    if (p.examples.size() < n)
      p.examples.push_back({"example " + std::to_string(i + 1), tok.decode(e.tokens, {.skip_special = false}), e});
  }
  p.lengths = token_count_stats(std::move(counts));
  p.summary = summary_of(name, examples.size(), p.lengths);
  return p;
}

std::string token_text(const Tokenizer& tok, std::int32_t id) {
  const std::int32_t one[1] = {id};
  const std::string bytes = tok.decode(one, {.skip_special = false});
  std::string out;
  for (std::size_t i = 0; i < bytes.size();) {
    std::size_t len = 0;
    const char c = bytes[i];
    if (c == '\n') {
      out += "\\n", ++i;
    } else if (c == '\t') {
      out += "\\t", ++i;
    } else if (c == '\r') {
      out += "\\r", ++i;
    } else if (valid_utf8_at(bytes, i, len) && static_cast<unsigned char>(c) >= 0x20) {
      out.append(bytes, i, len), i += len;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", static_cast<unsigned char>(c));
      out += buf, ++i;
    }
  }
  return out;
}

std::string format_preview(const DataPreview& p, const Tokenizer& tok) {
  std::string out;
  for (const PreviewExample& e : p.examples) {
    out += "=== " + e.label + ": " + std::to_string(e.example.tokens.size()) + " tokens, " +
           std::to_string(e.example.scored_count()) + " scored" + (e.truncated ? ", truncated" : "") + " ===\n";
    out += e.text;
    if (e.text.empty() || e.text.back() != '\n') out += '\n';
    out += "--- tokens: text(id, label), label -100 = not scored ---\n";
    for (std::size_t t = 0; t < e.example.tokens.size(); ++t) {
      const std::int32_t id = e.example.tokens[t];
      out += token_text(tok, id) + "(" + std::to_string(id) + ", " +
             (e.example.is_scored(t) ? std::to_string(id) : std::string("-100")) + ") ";
    }
    out += "\n\n";
  }
  out += p.summary + "\n";
  out += std::to_string(p.kept) + " example(s) kept for training: " + std::to_string(p.total_tokens) + " tokens, " +
         std::to_string(p.scored_tokens) + " scored\n";
  for (const std::string& n : p.notes) out += n + "\n";
  return out;
}

}  // namespace lwb::data
