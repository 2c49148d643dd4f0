// Tokenizer encode speed on one core, in MB of UTF-8 text per second, for a
// Hugging Face folder's tokenizer (default: the SmolLM-style fixture; the
// real SmolLM2 vocabulary is a folder make_tokenizer_golden.py --smollm2
// writes), or a .gguf file's vocabulary (SmolLM2-135M-Instruct.Q4_1.gguf,
// read as model.tokenizer = auto reads it; the load time is printed).
// tests/bench/tokenizer_speed.py measures Python `tokenizers` on the same
// texts the same two ways:
//   document: every text joined by newlines, repeated to 2 MB, one encode;
//   lines:    each text encoded on its own.
//   bench_tokenizer [TOKENIZER_DIR | FILE.gguf] [TEXTS_JSONL]
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/data/hf_tokenizer.h"
#include "core/source/model_source.h"
#include "tests/bench/bench_common.h"

using namespace lwb;

namespace {

// Best of three runs of f, in seconds.
template <class F>
double best_of_3(F&& f) {
  double best = 1e30;
  for (int run = 0; run < 3; ++run) {
    const double t0 = bench::now_s();
    f();
    best = std::min(best, bench::now_s() - t0);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string data = std::string(LWB_SOURCE_DIR) + "/tests/data/tokenizers/";
  const std::string dir = argc > 1 ? argv[1] : data + "smollm";
  const std::string texts_file = argc > 2 ? argv[2] : data + "texts.jsonl";
  const double load_t0 = bench::now_s();
  const auto tok = dir.ends_with(".gguf")
                       ? load_tokenizer(resolve_base(dir, std::filesystem::temp_directory_path()))
                       : data::load_hf_tokenizer(dir);
  const double load_s = bench::now_s() - load_t0;

  std::vector<std::string> texts;
  std::ifstream in(texts_file);
  std::size_t line_bytes = 0;
  for (std::string line; std::getline(in, line);) {
    texts.push_back(nlohmann::json::parse(line).get<std::string>());
    line_bytes += texts.back().size();
  }
  std::string document;
  while (document.size() < 2'000'000)
    for (const std::string& t : texts) document += t + "\n";

  std::size_t doc_ids = 0, line_ids = 0;
  const double doc_s = best_of_3([&] { doc_ids = tok->encode(document).size(); });
  const double lines_s = best_of_3([&] {
    line_ids = 0;
    for (const std::string& t : texts) line_ids += tok->encode(t).size();
  });
  std::printf("tokenizer %s (%d tokens, loaded in %.3f s), %zu texts\n", dir.c_str(), tok->vocab_size(), load_s,
              texts.size());
  std::printf("document: %.2f MB in %.3f s: %.2f MB/s, %.0f tokens/s\n", document.size() / 1e6, doc_s,
              document.size() / 1e6 / doc_s, doc_ids / doc_s);
  std::printf("lines:    %.2f MB in %.3f s: %.2f MB/s, %.0f tokens/s\n", line_bytes / 1e6, lines_s,
              line_bytes / 1e6 / lines_s, line_ids / lines_s);
  return doc_ids == 0;
}
