#!/usr/bin/env python3
"""PyTorch + PEFT on the CPU, one measurement per process, on the model and
settings that tests/bench/compare-cpu.sh gives bench_train --one.

A LlamaForCausalLM built from a LlamaConfig with the given dimensions (random
init, nothing downloaded, SDPA attention), trained on random tokens with
torch.optim.AdamW: full fine-tuning, or LoRA / DoRA of rank r on all seven
projections. Prints one RESULT line: tokens/s (median step after warm-up),
peak RSS of the process (getrusage) and torch's thread count.

A benchmark, not a test: where torch, transformers or peft is missing it
prints one SKIP line and exits 0.

    python3 tests/bench/peft_cpu_bench.py --hidden 512 --intermediate 1536 --layers 8 --heads 8 \\
        --kv-heads 8 --vocab 32000 --method lora --rank 8 --alpha 16 --batch 8 --seq 256 --threads 2
"""
import argparse
import os
import resource
import statistics
import sys
import time

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("hidden", "intermediate", "layers", "heads", "kv-heads", "vocab"):
        ap.add_argument(f"--{name}", type=int, required=True)
    ap.add_argument("--max-seq", type=int, default=8192)
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--norm-eps", type=float, default=1e-5)
    ap.add_argument("--tie", type=int, default=0)
    ap.add_argument("--name", default="model")
    ap.add_argument("--method", choices=["full", "lora", "dora"], default="lora")
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    try:
        import torch
        import transformers
        import peft
    except ImportError as e:
        print(f"SKIP: peft_cpu_bench: {e.name} is not installed")
        return 0
    from transformers import LlamaConfig, LlamaForCausalLM
    from peft import LoraConfig, get_peft_model

    torch.set_num_threads(args.threads)
    cfg = LlamaConfig(vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=args.intermediate,
                      num_hidden_layers=args.layers, num_attention_heads=args.heads,
                      num_key_value_heads=args.kv_heads, max_position_embeddings=args.max_seq,
                      rms_norm_eps=args.norm_eps, rope_theta=args.rope_theta,
                      tie_word_embeddings=bool(args.tie), attn_implementation="sdpa")
    torch.manual_seed(1)
    model = LlamaForCausalLM(cfg)
    if args.method != "full":
        model = get_peft_model(model, LoraConfig(r=args.rank, lora_alpha=args.alpha, lora_dropout=0.0,
                                                 target_modules=TARGETS, use_dora=args.method == "dora"))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, args.vocab, (args.batch, args.seq), generator=g)
    times = []
    for step in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        loss = model(input_ids=tokens, labels=tokens).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step >= args.warmup:
            times.append(time.perf_counter() - t0)
    tps = args.batch * args.seq / statistics.median(times)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"RESULT side=pytorch model={args.name} method={args.method} batch={args.batch} seq={args.seq} "
          f"rank={args.rank} alpha={args.alpha:g} threads={torch.get_num_threads()} "
          f"blas_threads={os.environ.get('OPENBLAS_NUM_THREADS', '?')} tokens_per_s={tps:.1f} "
          f"peak_rss_mb={peak_mb:.1f} trainable={sum(p.numel() for p in params)} "
          f"versions=torch-{torch.__version__},transformers-{transformers.__version__},peft-{peft.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
