// Generation speed on the CPU: prefill and decode tokens/s of SmolLM2-135M
// (the real GGUF when it is found, else the same shape with random weights)
// at batch 1 and 8, beside OpenBLAS sgemm measured in the same run. Prefill's
// rate in GFLOP/s counts 2 N per prompt token (N: the layers' matmul
// parameters; attention's products and the last rows' classifier not
// counted). tests/bench/generate_bench.py runs this and transformers'
// generate in turn and prints them side by side.
//
//   bench_generate [--gguf FILE] [--batches 1,8] [--prompt 128] [--new 64] [--rounds 1] [--max-rows 512]
//
// Lines starting with RESULT are key=value pairs.
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/common/paths.h"
#include "core/cpu/cpu_backend.h"
#include "core/cpu/process_settings.h"
#include "core/cpu/small_gemm.h"
#include "core/data/tokenizer.h"
#include "core/format/gguf.h"
#include "core/infer/decode_weights.h"
#include "core/infer/generator.h"
#include "core/io/gguf_model.h"
#include "core/model/weights_init.h"
#include "tests/bench/bench_common.h"

using namespace lwb;
namespace fs = std::filesystem;

namespace {

// SmolLM2-135M's shape (its GGUF's metadata).
ModelConfig smollm2_shape() {
  ModelConfig c;
  c.name = "smollm2-135m-shape";
  c.hidden = 576;
  c.intermediate = 1536;
  c.layers = 30;
  c.heads = 9;
  c.kv_heads = 3;
  c.vocab = 49152;
  c.max_seq = 8192;
  c.rope_theta = 100000;
  c.tie_embeddings = true;
  return c;
}

double layer_matmul_params(const ModelConfig& c) {
  double n = 0;
  for (Target t : kAllTargets) {
    const LinearShape s = linear_shape(c, t);
    n += static_cast<double>(s.in) * s.out;
  }
  return n * c.layers;
}

std::vector<int> int_list(const char* s) {
  std::vector<int> out;
  for (const char* p = s; *p;) {
    out.push_back(std::atoi(p));
    p = std::strchr(p, ',');
    if (!p) break;
    ++p;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  reexec_with_process_settings(argv);
  std::string gguf;
  if (const char* env = std::getenv("LWB_SMOLLM2_GGUF")) gguf = env;
  if (gguf.empty()) gguf = (user_data_dir() / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf").string();
  std::vector<int> batches = {1, 8};
  int prompt = 128, fresh = 64, rounds = 1, max_rows = 512;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--gguf") gguf = argv[i + 1];
    else if (a == "--batches") batches = int_list(argv[i + 1]);
    else if (a == "--prompt") prompt = std::atoi(argv[i + 1]);
    else if (a == "--new") fresh = std::atoi(argv[i + 1]);
    else if (a == "--rounds") rounds = std::atoi(argv[i + 1]);
    else if (a == "--max-rows") max_rows = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: bench_generate [--gguf FILE] [--batches 1,8] [--prompt N] [--new N] [--rounds N] [--max-rows N]\n");
      return 2;
    }
  }

  CpuBackend be;
  MemoryLedger ledger;
  std::unique_ptr<Model> model;
  std::optional<format::GgufFile> file;  // the decoder's quantised blocks come from it
  std::string weights;
  const double t_load = bench::now_s();
  if (fs::exists(gguf)) {
    const format::GgufFile& f = file.emplace(format::GgufFile::open(gguf));
    model = std::make_unique<Model>(io::read_gguf_config(f), Model::Mode::Frozen);
    model->materialize(be, ledger, 1, 1);
    io::import_gguf_weights(*model, f);
    weights = gguf;
  } else {
    model = std::make_unique<Model>(smollm2_shape(), Model::Mode::Frozen);
    model->materialize(be, ledger, 1, 1);
    model->init_base_weights(1);
    weights = "random (no " + gguf + ")";
  }
  const ModelConfig& mc = model->config();
  std::printf("bench_generate: %s, %d threads, OpenBLAS %s; weights %s, loaded in %.1f s\n", mc.name.c_str(),
              omp_get_max_threads(), openblas_core_name(), weights.c_str(), bench::now_s() - t_load);
  const double sgemm = bench::sgemm_gflops(2048);
  std::printf("RESULT side=sgemm gflops=%.2f\n", sgemm);
  const double flops_per_token = 2 * layer_matmul_params(mc);

  // Token ids only: the tokenizer never runs (no stop ids, no text needed
  // for speed), the byte one stands in for the generator's interface.
  data::ByteTokenizer tokenizer;
  const int max_batch = *std::max_element(batches.begin(), batches.end());
  infer::Decoder decoder(*model, infer::DecoderLimits{max_batch, prompt + fresh, std::max(max_rows, max_batch)}, ledger,
                         infer::DecodeWeights::make(*model, file ? &*file : nullptr, ledger));
  if (const infer::DecodeWeights* dw = decoder.decode_weights())
    std::printf("bench_generate: decode steps on the small-batch kernel (%s), %d matrices from GGUF blocks (%.1f MB)\n",
                cpu::simd_name(cpu::best_simd()), dw->quantized_matrices(), dw->quantized_bytes() / 1e6);
  infer::Generator gen(decoder, tokenizer);
  infer::GenerateOptions o;
  o.max_new_tokens = fresh;
  o.tokenizer_stops = false;
  for (int round = 0; round < rounds; ++round)
    for (int B : batches) {
      std::vector<std::vector<std::int32_t>> prompts(static_cast<std::size_t>(B));
      for (int b = 0; b < B; ++b)
        for (int t = 0; t < prompt; ++t)
          prompts[static_cast<std::size_t>(b)].push_back(
              static_cast<std::int32_t>(splitmix64(static_cast<std::uint64_t>(round * 1000003 + b * 7919 + t)) % mc.vocab));
      gen.reset();
      gen.generate(prompts, o);
      const infer::GenerateStats& s = gen.stats();
      const double prefill = s.prefill_tokens / s.prefill_seconds, decode = s.decode_tokens / s.decode_seconds;
      std::printf("RESULT side=ours round=%d batch=%d prompt=%d new=%d prefill_tps=%.1f decode_tps=%.2f "
                  "prefill_gflops=%.2f prefill_vs_sgemm=%.3f\n",
                  round, B, prompt, fresh, prefill, decode, prefill * flops_per_token / 1e9,
                  prefill * flops_per_token / 1e9 / sgemm);
      std::fflush(stdout);
    }
  return 0;
}
