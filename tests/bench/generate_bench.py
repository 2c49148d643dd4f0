#!/usr/bin/env python3
"""Generation speed, this engine (tests/bench/bench_generate.cpp) beside
transformers' generate, on the same CPU with the same thread count, in turn:
each round runs bench_generate once, then transformers on the same batches,
prompt length and answer length; medians over the rounds.

The model: SmolLM2-135M-Instruct's GGUF when found (both sides dequantise it
to float32: transformers through from_pretrained(gguf_file=...)), else the
same LLaMA shape with random weights on both sides. transformers runs eager
attention in float32 under torch.no_grad; generate is greedy with
min_new_tokens = max_new_tokens, so every answer has the same length.

  prefill tokens/s  the prompts' tokens over the time of one forward over
                    them (transformers: model(ids, logits_to_keep=1), the
                    prefill generate runs; ours: the generator's prefill)
  decode tokens/s   the tokens fed one step at a time, B * (new - 1), over
                    the rest of the generation (transformers: generate's time
                    minus that forward)
  prefill % sgemm   ours, against OpenBLAS sgemm measured by bench_generate

A benchmark, not a test:
    /work/venv/bin/python tests/bench/generate_bench.py [--bench build/tests/bench/bench_generate]
        [--gguf FILE] [--rounds 3] [--batches 1,8] [--prompt 128] [--new 64] [--threads 2]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_results(text):
    rows = []
    for line in text.splitlines():
        if line.startswith("RESULT "):
            rows.append(dict(kv.split("=", 1) for kv in line.split()[1:]))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", default=os.path.join(HERE, "..", "..", "build", "tests", "bench", "bench_generate"))
    default_gguf = os.environ.get("LWB_SMOLLM2_GGUF", "/work/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--gguf", default=default_gguf)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    import torch
    import transformers
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM
    torch.set_num_threads(args.threads)
    t0 = time.time()
    if os.path.exists(args.gguf):
        d, name = os.path.dirname(os.path.abspath(args.gguf)), os.path.basename(args.gguf)
        model = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32,
                                                     attn_implementation="eager")
        weights = args.gguf
    else:
        cfg = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                          num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                          rope_theta=100000.0, tie_word_embeddings=True, rms_norm_eps=1e-5)
        model = LlamaForCausalLM(cfg).to(torch.float32)
        model.config._attn_implementation = "eager"
        weights = "random"
    model.eval()
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, {args.threads} threads; "
          f"weights {weights} (loaded in {time.time() - t0:.0f} s); prompt {args.prompt}, new {args.new}")

    ours = {b: {"prefill": [], "decode": [], "vs_sgemm": []} for b in batches}
    hf = {b: {"prefill": [], "decode": []} for b in batches}
    sgemm = []
    gguf_args = ["--gguf", args.gguf] if os.path.exists(args.gguf) else ["--gguf", "/nonexistent.gguf"]
    for r in range(args.rounds):
        out = subprocess.run([args.bench, *gguf_args, "--batches", args.batches, "--prompt", str(args.prompt),
                              "--new", str(args.new)], capture_output=True, text=True, check=True).stdout
        for row in parse_results(out):
            if row["side"] == "sgemm":
                sgemm.append(float(row["gflops"]))
            else:
                b = int(row["batch"])
                ours[b]["prefill"].append(float(row["prefill_tps"]))
                ours[b]["decode"].append(float(row["decode_tps"]))
                ours[b]["vs_sgemm"].append(float(row["prefill_vs_sgemm"]))
        g = torch.Generator().manual_seed(r)
        for b in batches:
            ids = torch.randint(0, model.config.vocab_size, (b, args.prompt), generator=g)
            mask = torch.ones_like(ids)
            with torch.no_grad():
                t = time.perf_counter()
                model(input_ids=ids, attention_mask=mask, logits_to_keep=1)
                t_prefill = time.perf_counter() - t
                t = time.perf_counter()
                model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=args.new,
                               min_new_tokens=args.new, pad_token_id=0)
                t_gen = time.perf_counter() - t
            hf[b]["prefill"].append(b * args.prompt / t_prefill)
            hf[b]["decode"].append(b * (args.new - 1) / max(t_gen - t_prefill, 1e-9))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)

    med = statistics.median
    print(f"OpenBLAS sgemm 2048^3 (in bench_generate): median {med(sgemm):.1f} GFLOP/s "
          f"(rounds: {', '.join(f'{x:.1f}' for x in sgemm)})")
    print(f"{'batch':>5} | {'prefill tok/s ours':>18} {'transformers':>12} {'ratio':>6} {'% sgemm':>8} | "
          f"{'decode tok/s ours':>17} {'transformers':>12} {'ratio':>6}")
    for b in batches:
        o, h = ours[b], hf[b]
        print(f"{b:>5} | {med(o['prefill']):>18.1f} {med(h['prefill']):>12.1f} "
              f"{med(o['prefill']) / med(h['prefill']):>5.2f}x {100 * med(o['vs_sgemm']):>7.1f}% | "
              f"{med(o['decode']):>17.1f} {med(h['decode']):>12.1f} {med(o['decode']) / med(h['decode']):>5.2f}x")
        print(f"      rounds: ours prefill {[round(x) for x in o['prefill']]}, decode {[round(x, 1) for x in o['decode']]}; "
              f"transformers prefill {[round(x) for x in h['prefill']]}, decode {[round(x, 1) for x in h['decode']]}")


if __name__ == "__main__":
    main()
