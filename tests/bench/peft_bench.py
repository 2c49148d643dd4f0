#!/usr/bin/env python3
"""PyTorch + PEFT on the model and settings of tests/bench/bench_gpu.cpp, so
the two can be read side by side (tests/gpu/device-check.sh does).

A LlamaForCausalLM built from a LlamaConfig with bench_gpu's dimensions
(random init, nothing downloaded), trained on random tokens with
torch.optim.AdamW: full fine-tuning, LoRA r = 16 on all seven projections
(fp32, TF32, and a bf16 base with fp32 adapters, PEFT's default
autocast_adapter_dtype), DoRA and AdaLoRA, with eager attention and again
with SDPA. Per row: tokens/s (median step after warm-up, each step ended by
torch.cuda.synchronize), torch.cuda.max_memory_allocated, and MFU against
torch.matmul's rate measured in the same run.

A benchmark, not a test: where torch, transformers, peft or a CUDA device is
missing it prints one SKIP line and exits 0. Lines starting with RESULT are
key=value pairs in bench_gpu's vocabulary.

    python3 tests/bench/peft_bench.py [--steps N] [--warmup N] [--batch B] [--seq T] [--attn eager,sdpa]
"""
import argparse
import statistics
import sys
import time

# bench_gpu.cpp's gpt2_small_llama(): 134,105,856 parameters.
HIDDEN, INTERMEDIATE, LAYERS, HEADS, VOCAB, MAX_POS = 768, 2048, 12, 12, 32000, 1024
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
RANK, ALPHA = 16, 32
# (method, precision) as bench_gpu's rows.
ROWS = [("full", "fp32"), ("full", "tf32"), ("lora", "fp32"), ("lora", "tf32"),
        ("lora", "bf16-frozen"), ("dora", "fp32"), ("adalora", "fp32")]


def skip(why):
    print(f"SKIP: peft_bench: {why}")
    sys.exit(0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--attn", default="eager,sdpa")
    args = ap.parse_args()
    try:
        import torch
        import transformers
        import peft
    except ImportError as e:
        skip(f"{e.name} is not installed")
    if not torch.cuda.is_available():
        skip("torch sees no CUDA device")
    from transformers import LlamaConfig, LlamaForCausalLM
    from peft import AdaLoraConfig, LoraConfig, get_peft_model

    dev = torch.device("cuda")
    B, T = args.batch, args.seq
    print(f"peft_bench: {torch.cuda.get_device_name(0)}; torch {torch.__version__}, transformers "
          f"{transformers.__version__}, peft {peft.__version__}")

    def gemm_tflops(dtype, tf32):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        n = 4096
        a = torch.full((n, n), 0.5, device=dev, dtype=dtype)
        b = torch.full((n, n), 0.25, device=dev, dtype=dtype)
        for _ in range(3):
            a @ b.T
        torch.cuda.synchronize()
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 0.5:
            for _ in range(10):
                a @ b.T
            torch.cuda.synchronize()
            reps += 10
        return 2.0 * n ** 3 * reps / (time.perf_counter() - t0) / 1e12

    rates = {"fp32": gemm_tflops(torch.float32, False), "tf32": gemm_tflops(torch.float32, True),
             "bf16-frozen": gemm_tflops(torch.bfloat16, False)}
    print(f"torch.matmul 4096^3: fp32 {rates['fp32']:.1f}, tf32 {rates['tf32']:.1f}, "
          f"bf16 {rates['bf16-frozen']:.1f} TFLOP/s")
    print(f"RESULT side=peft kind=gemm fp32_tflops={rates['fp32']:.2f} tf32_tflops={rates['tf32']:.2f} "
          f"bf16_tflops={rates['bf16-frozen']:.2f}")

    def build(method, precision, attn):
        cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=INTERMEDIATE,
                          num_hidden_layers=LAYERS, num_attention_heads=HEADS, num_key_value_heads=HEADS,
                          max_position_embeddings=MAX_POS, rms_norm_eps=1e-5, rope_theta=10000.0,
                          tie_word_embeddings=False, attn_implementation=attn)
        torch.manual_seed(1)
        with dev:
            model = LlamaForCausalLM(cfg)
        if precision == "bf16-frozen":
            model = model.to(torch.bfloat16)  # as from_pretrained(torch_dtype=bfloat16)
        n_base = sum(p.numel() for p in model.parameters())
        if method == "full":
            return model, n_base
        if method == "adalora":
            pc = AdaLoraConfig(init_r=RANK, target_r=8, lora_alpha=ALPHA, lora_dropout=0.0,
                               target_modules=TARGETS, total_step=1000, tinit=200, tfinal=200, deltaT=10)
        else:
            pc = LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=TARGETS,
                            use_dora=method == "dora")
        return get_peft_model(model, pc), n_base

    def flops_per_token(method, trainable, n_base):
        n = n_base - VOCAB * HIDDEN  # bench::train_flops_per_token: no embedding lookup
        return 6.0 * n if method == "full" else 4.0 * n + 6.0 * trainable

    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, VOCAB, (B, T), generator=g).to(dev)
    print(f"model: hidden {HIDDEN}, {LAYERS} layers, {HEADS} heads, intermediate {INTERMEDIATE}, vocab {VOCAB}; "
          f"batch {B} x {T}, {args.warmup} warm-up + {args.steps} timed steps (median), AdamW")
    print(f"\n{'method':8} {'precision':12} {'attn':6} {'trainable':>11} {'tokens/s':>10} {'step ms':>8} "
          f"{'TFLOP/s':>8} {'MFU%':>6} {'peak GB':>8}")
    for attn in [a for a in args.attn.split(",") if a]:
        for method, precision in ROWS:
            torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            try:
                model, n_base = build(method, precision, attn)
                model.train()
                params = [p for p in model.parameters() if p.requires_grad]
                trainable = sum(p.numel() for p in params)
                opt = torch.optim.AdamW(params, lr=1e-4)
                times = []
                for step in range(args.warmup + args.steps):
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    loss = model(input_ids=tokens, labels=tokens).loss
                    loss.backward()
                    opt.step()
                    if method == "adalora":
                        model.base_model.update_and_allocate(step)
                    opt.zero_grad(set_to_none=True)
                    torch.cuda.synchronize()
                    if step >= args.warmup:
                        times.append(time.perf_counter() - t0)
                sec = statistics.median(times)
                tps = B * T / sec
                tflops = tps * flops_per_token(method, trainable, n_base) / 1e12
                peak = torch.cuda.max_memory_allocated() / 1e9
                mfu = tflops / rates[precision]
                print(f"{method:8} {precision:12} {attn:6} {trainable:11d} {tps:10.0f} {1e3 * sec:8.1f} "
                      f"{tflops:8.1f} {100 * mfu:6.1f} {peak:8.3f}")
                print(f"RESULT side=peft method={method} precision={precision} attn={attn} tokens_per_s={tps:.1f} "
                      f"peak_gb={peak:.4f} mfu={mfu:.4f} trainable={trainable} base_params={n_base}")
            except Exception as e:  # one failing row (an old peft without DoRA, OOM) must not hide the rest
                print(f"{method:8} {precision:12} {attn:6} FAILED: {type(e).__name__}: {e}")
                print(f"RESULT side=peft method={method} precision={precision} attn={attn} error={type(e).__name__}")
            finally:
                model = opt = params = loss = None
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
