#!/usr/bin/env python3
"""GGUF goldens for tests/core/test_gguf.cpp, made with the real libraries.

Writes to tests/data/gguf/ (every .gguf below is written by the `gguf`
package's GGUFWriter, so the C++ reader is checked against files it did not
write):

  quants.gguf    per type T of F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K
                 Q6_K: tensor "T" [2, 512] of type T (blocks made by
                 gguf.quantize where the package can quantise, else random
                 bytes with finite f16 scales), and "T.dequant" F32 [2, 512] =
                 gguf.dequantize of those blocks. For export:
                 "quantize.input" F32 [2, 512] and "quantize.F16" /
                 "quantize.Q8_0" = gguf.quantize of it (block 0 holds f16
                 rounding ties and overflow, block 1 exact .5 ties for Q8_0,
                 block 2 zeros). "IQ2_XXS" [1, 256] of a type the engine does
                 not dequantise.
  metadata.gguf  one key of every value type (t.u8 ... t.f64), an array of
                 each scalar type and of strings, arrays of arrays, a custom
                 general.alignment of 64, and tensors of 1 to 4 dims.
  tiny_llama*.gguf
                 a tiny random LlamaForCausalLM (transformers) written as
                 llama.cpp's convert_hf_to_gguf.py writes it (LlamaModel.permute
                 on Q and K, the same keys) -- in the layout the engine's
                 exporter uses, so loading tiny_llama.gguf and exporting it
                 again must give the same bytes:
                   tiny_llama.gguf        untied, F32 (general.file_type 0)
                   tiny_llama.f16.gguf    the same in F16 (1-D tensors F32)
                   tiny_llama.q8_0.gguf   the same in Q8_0
                   tiny_llama_mixed.gguf  tied (no output.weight), matrices in
                                          Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 F16 BF16
                   tiny_llama3.gguf       untied F32 with Llama-3 rotary scaling,
                                          carried as rope_freqs.weight
  tiny_llama_logits.safetensors
                 input_ids I32 [2, 8] and, per file above, F32 [2, 8, vocab]
                 logits of transformers loading that file
                 (from_pretrained(dir, gguf_file=...)); tiny_llama3's are the
                 HF model's own (transformers' GGUF loader ignores
                 rope_freqs.weight). Metadata: library versions, and how far
                 each GGUF load is from the HF model it was written from.

It also writes the fuzzer's seeds, tests/fuzz/corpus/gguf/: metadata.gguf
(as above) and blocks.gguf (one block of each dequantised type).

With --smollm2 FILE (SmolLM2-135M-Instruct.Q4_1.gguf, see the README's
`fetch smollm2`) it also writes smollm2_logits.safetensors: transformers'
logits for 12 fixed token ids from that file, at every 48th vocabulary id
("logits" F32 [12, 1024], "vocab_ids", "input_ids"), plus the full-vocabulary
argmax per position.

Rerun (outside the build; the engine's tests never need Python):
    python3 -m venv /tmp/ggufenv
    /tmp/ggufenv/bin/pip install gguf numpy torch transformers safetensors
    /tmp/ggufenv/bin/python tests/reference/make_gguf_golden.py [--smollm2 FILE]
The numbers depend only on the seeds below and the library versions, which
are recorded in the logits files' metadata.
"""
import argparse
import json
import math
import os
import platform
import sys

import numpy as np
import torch

import gguf
import safetensors
import transformers
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as V
from safetensors.numpy import save_file
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(TESTS, "data", "gguf")
SEEDS = os.path.join(TESTS, "fuzz", "corpus", "gguf")


def versions():
    return json.dumps({"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
                       "transformers": transformers.__version__, "gguf": _gguf_version(),
                       "safetensors": safetensors.__version__})


def _gguf_version():
    from importlib.metadata import version
    return version("gguf")


# ---- quantisation blocks ---------------------------------------------------

ROWS, COLS = 2, 512
K_QUANTS = {Q.Q4_K: (0, 2), Q.Q5_K: (0, 2), Q.Q6_K: (208,)}  # byte offsets of the f16 scales


def random_values(rng):
    # Per-block magnitudes from 1e-3 to 10, so the f16 scales span a range.
    x = rng.standard_normal((ROWS, COLS)).astype(np.float32)
    scales = (10.0 ** rng.uniform(-3, 1, size=(ROWS, COLS // 32, 1))).astype(np.float32)
    return (x.reshape(ROWS, COLS // 32, 32) * scales).reshape(ROWS, COLS)


def random_k_blocks(rng, qtype):
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(ROWS * COLS // block, size), dtype=np.uint8)
    # Random bytes as f16 are often inf or NaN; the scales get finite values
    # of both signs, everything else (6-bit scales, levels) stays random.
    for offset in K_QUANTS[qtype]:
        d = (rng.standard_normal(raw.shape[0]) * 0.05).astype(np.float16)
        raw[:, offset:offset + 2] = d.view(np.uint8).reshape(-1, 2)
    return raw.reshape(ROWS, -1)


def quantize_input():
    rng = np.random.default_rng(7)
    x = random_values(rng)
    # f16: ties to even (1 + 2^-11, 2049, 3 * 2^-25), the largest finite
    # value, rounding up to it, to infinity (65520), subnormals, signed zero.
    f16_cases = [1 + 2 ** -11, 2049.0, 3 * 2 ** -25, 65504.0, 65519.0, 65520.0, -65520.0, 2 ** -24, 2 ** -25,
                 -0.0, 6e-8, 1e-5, -1e-7, 0.1, 1 / 3]
    x[0, :len(f16_cases)] = np.array(f16_cases, dtype=np.float32)
    # Q8_0: max 127 makes d exactly 1, so these are exact ties: ggml rounds
    # them away from zero.
    x[0, 32:64] = 0.25
    x[0, 32:40] = [127.0, 2.5, -3.5, 0.5, -0.5, 126.5, -1.5, 4.5]
    x[0, 64:96] = 0.0
    return x


def make_quants(path):
    rng = np.random.default_rng(1234)
    w = gguf.GGUFWriter(path, arch="quants")
    for qtype in (Q.F32, Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q4_K, Q.Q5_K, Q.Q6_K):
        if qtype in K_QUANTS:  # the package dequantises K-quants but cannot make them
            raw = random_k_blocks(rng, qtype)
        else:
            values = random_values(rng)
            if qtype in (Q.F16, Q.BF16):
                values[0, :8] = [np.inf, -np.inf, -0.0, 0.0, 65504.0, 6e-8, 1e-40, -3e38]
            raw = np.ascontiguousarray(gguf.quantize(values, qtype)).view(np.uint8)
        deq = gguf.dequantize(raw, qtype).astype(np.float32)
        assert deq.shape == (ROWS, COLS) and np.isfinite(deq).sum() > 0
        w.add_tensor(qtype.name, raw, raw_dtype=qtype)
        w.add_tensor(qtype.name + ".dequant", deq)
    x = quantize_input()
    w.add_tensor("quantize.input", x)
    for qtype in (Q.F16, Q.Q8_0):
        raw = np.ascontiguousarray(gguf.quantize(x, qtype)).view(np.uint8)
        w.add_tensor("quantize." + qtype.name, raw, raw_dtype=qtype)
    block, size = gguf.GGML_QUANT_SIZES[Q.IQ2_XXS]
    w.add_tensor("IQ2_XXS", rng.integers(0, 256, size=(1, size), dtype=np.uint8), raw_dtype=Q.IQ2_XXS)
    write(w)


def make_metadata(path):
    w = gguf.GGUFWriter(path, arch="test")
    w.add_custom_alignment(64)
    scalars = [("u8", 200, V.UINT8), ("i8", -100, V.INT8), ("u16", 60000, V.UINT16), ("i16", -30000, V.INT16),
               ("u32", 4000000000, V.UINT32), ("i32", -2000000000, V.INT32), ("f32", 0.1, V.FLOAT32),
               ("bool", True, V.BOOL), ("string", "h\u00e9llo \u2713", V.STRING), ("u64", 2 ** 63 + 5, V.UINT64),
               ("i64", -2 ** 62 - 7, V.INT64), ("f64", 0.1, V.FLOAT64)]
    for name, value, vtype in scalars:
        w.add_key_value("t." + name, value, vtype)
    arrays = [("u8", [1, 2, 255], V.UINT8), ("i8", [-128, 0, 127], V.INT8), ("u16", [0, 65535], V.UINT16),
              ("i16", [-32768, 32767], V.INT16), ("u32", [7, 4294967295], V.UINT32),
              ("i32", [-2147483648, 2147483647], V.INT32), ("f32", [1.5, -0.25, 3e38], V.FLOAT32),
              ("bool", [True, False, True], V.BOOL), ("string", ["a", "", "\u4e2d\u6587"], V.STRING),
              ("u64", [18446744073709551615], V.UINT64), ("i64", [-9223372036854775808, 1], V.INT64),
              ("f64", [1e300, -2.5], V.FLOAT64)]
    for name, value, vtype in arrays:
        w.add_key_value("t.array." + name, value, V.ARRAY, sub_type=vtype)
    # Arrays of arrays: the package types the inner items as i32 and string.
    w.add_key_value("t.array.nested", [[1, 2], [3]], V.ARRAY)
    w.add_key_value("t.array.nested_strings", [["x"], ["y", "z"]], V.ARRAY)
    w.add_tensor("a", np.array([1.0, 2.0, 3.0], dtype=np.float32))
    w.add_tensor("b", np.ascontiguousarray(gguf.quantize(np.linspace(-1, 1, 64, dtype=np.float32).reshape(2, 32),
                                                         Q.Q8_0)).view(np.uint8), raw_dtype=Q.Q8_0)
    w.add_tensor("c", np.arange(24, dtype=np.float16).reshape(2, 3, 4))
    w.add_tensor("d", np.arange(6, dtype=np.float32).reshape(1, 2, 1, 3))
    write(w)


def make_blocks(path):
    rng = np.random.default_rng(99)
    w = gguf.GGUFWriter(path, arch="blocks")
    for qtype in (Q.F32, Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1):
        raw = np.ascontiguousarray(gguf.quantize(rng.standard_normal((1, 32)).astype(np.float32), qtype))
        w.add_tensor(qtype.name, raw.view(np.uint8), raw_dtype=qtype)
    for qtype in K_QUANTS:
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        w.add_tensor(qtype.name, rng.integers(0, 256, size=(1, size), dtype=np.uint8), raw_dtype=qtype)
    write(w)


def write(w):
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---- tiny LLaMA ------------------------------------------------------------

SEQ = 8


def tiny_model(tied, llama3):
    rope = {"rope_type": "default", "rope_theta": 10000.0}
    if llama3:  # theta 100 puts two of the four frequencies in the interpolated band
        rope = {"rope_type": "llama3", "rope_theta": 100.0, "factor": 8.0, "low_freq_factor": 1.0,
                "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                      rms_norm_eps=1e-5, rope_parameters=rope, tie_word_embeddings=tied, hidden_act="silu",
                      attention_bias=False, mlp_bias=False, bos_token_id=1, eos_token_id=2,
                      attn_implementation="eager", dtype=torch.float32)
    torch.manual_seed(11 + 2 * tied + llama3)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(1 + 0.2 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) * (0.4 if "embed" in name else 0.2))
    return model


def permute(w, n_head, n_head_kv):
    # convert_hf_to_gguf.py, LlamaModel.permute
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


LAYER_NAMES = [("input_layernorm", "attn_norm"), ("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"),
               ("self_attn.v_proj", "attn_v"), ("self_attn.o_proj", "attn_output"),
               ("post_attention_layernorm", "ffn_norm"), ("mlp.gate_proj", "ffn_gate"), ("mlp.up_proj", "ffn_up"),
               ("mlp.down_proj", "ffn_down")]


def gguf_tensors(model):
    """(gguf name, float32 array) in the engine's order (Model::named_base_weights)."""
    cfg = model.config
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    out = [("token_embd.weight", sd["model.embed_tokens.weight"])]
    for i in range(cfg.num_hidden_layers):
        for hf, g in LAYER_NAMES:
            w = sd[f"model.layers.{i}.{hf}.weight"]
            if g == "attn_q":
                w = permute(w, cfg.num_attention_heads, cfg.num_attention_heads)
            if g == "attn_k":
                w = permute(w, cfg.num_attention_heads, cfg.num_key_value_heads)
            out.append((f"blk.{i}.{g}.weight", np.ascontiguousarray(w)))
    out.append(("output_norm.weight", sd["model.norm.weight"]))
    if not cfg.tie_word_embeddings:
        out.append(("output.weight", sd["lm_head.weight"]))
    return out


def llama3_rope_factors(cfg):
    # convert_hf_to_gguf.py, LlamaModel.generate_extra_tensors
    rope = cfg.rope_parameters
    base, dim = rope["rope_theta"], cfg.hidden_size // cfg.num_attention_heads
    freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    factor, low, high = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"]
    old_context_len = rope["original_max_position_embeddings"]
    low_freq_wavelen, high_freq_wavelen = old_context_len / low, old_context_len / high
    factors = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_freq_wavelen:
            factors.append(1)
        elif wavelen > low_freq_wavelen:
            factors.append(factor)
        else:
            smooth = (old_context_len / wavelen - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(factors, dtype=np.float32)


def write_llama(path, model, name, qtype_of, file_type):
    """qtype_of(gguf_name, array) -> GGMLQuantizationType."""
    cfg = model.config
    w = gguf.GGUFWriter(path, arch="llama")
    # The exporter's key order: general, llama.*, file type, then tokenizer.*.
    w.add_name(name)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_vocab_size(cfg.vocab_size)
    w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    w.add_file_type(file_type)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_tokenizer_model("gpt2")
    w.add_token_list(["<unk>", "<s>", "</s>"] + [f"t{i}" for i in range(3, cfg.vocab_size)])
    w.add_token_types([2, 3, 3] + [1] * (cfg.vocab_size - 3))
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    if cfg.rope_parameters["rope_type"] == "llama3":
        w.add_tensor("rope_freqs.weight", llama3_rope_factors(cfg))
    for gname, arr in gguf_tensors(model):
        qtype = Q.F32 if arr.ndim == 1 else qtype_of(gname, arr)
        if qtype == Q.F32:
            w.add_tensor(gname, arr)
        else:
            w.add_tensor(gname, np.ascontiguousarray(gguf.quantize(arr, qtype)).view(np.uint8), raw_dtype=qtype)
    write(w)


MIXED = {"token_embd": Q.Q8_0, "attn_q": Q.Q4_0, "attn_k": Q.Q4_1, "attn_v": Q.Q5_0, "attn_output": Q.Q5_1,
         "ffn_gate": Q.Q8_0, "ffn_up": Q.F16, "ffn_down": Q.BF16}


def logits_of(model, ids):
    with torch.no_grad():
        return model(torch.from_numpy(ids).long()).logits.numpy().astype(np.float32)


def load_gguf(path):
    return AutoModelForCausalLM.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path),
                                                dtype=torch.float32, attn_implementation="eager").eval()


def rel(a, b):
    return float(np.linalg.norm((a - b).astype(np.float64)) / np.linalg.norm(b.astype(np.float64)))


def make_tiny(out):
    ids = np.random.default_rng(5).integers(0, 64, size=(2, SEQ)).astype(np.int32)
    tensors, meta = {"input_ids": ids}, {"versions": versions()}
    untied, tied, llama3 = tiny_model(False, False), tiny_model(True, False), tiny_model(False, True)
    files = [("tiny_llama", untied, lambda n, a: Q.F32, 0),
             ("tiny_llama.f16", untied, lambda n, a: Q.F16, 1),
             ("tiny_llama.q8_0", untied, lambda n, a: Q.Q8_0, 7),
             ("tiny_llama_mixed", tied, lambda n, a: MIXED[n.split(".")[-2]], 3),
             ("tiny_llama3", llama3, lambda n, a: Q.F32, 0)]
    for stem, model, qtype_of, file_type in files:
        path = os.path.join(out, stem + ".gguf")
        write_llama(path, model, "tiny-llama", qtype_of, file_type)
        gguf.GGUFReader(path)  # the package reads what it wrote
        want = logits_of(model, ids)
        got = logits_of(load_gguf(path), ids)
        meta["rel_" + stem] = repr(rel(got, want))
        print(f"{stem}: transformers from the GGUF vs the HF model: rel {rel(got, want):.3g}")
        if stem == "tiny_llama":
            assert rel(got, want) < 1e-6, "the F32 GGUF must reproduce the HF model"
        tensors[stem] = want if stem == "tiny_llama3" else got
    save_file(tensors, os.path.join(out, "tiny_llama_logits.safetensors"), metadata=meta)


def make_smollm2(path, out):
    ids = np.array([[1, 504, 3458, 282, 4237, 314, 253, 2329, 28, 30, 2, 9690]], dtype=np.int32)
    model = load_gguf(os.path.abspath(path))
    logits = logits_of(model, ids)[0]
    vocab_ids = np.arange(0, logits.shape[-1], 48, dtype=np.int32)
    save_file({"input_ids": ids, "vocab_ids": vocab_ids, "logits": np.ascontiguousarray(logits[:, vocab_ids]),
               "argmax": logits.argmax(-1).astype(np.int32)},
              os.path.join(out, "smollm2_logits.safetensors"), metadata={"versions": versions()})
    print("smollm2: argmax", logits.argmax(-1).tolist())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--smollm2", help="SmolLM2-135M-Instruct.Q4_1.gguf, for smollm2_logits.safetensors")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    make_quants(os.path.join(args.out, "quants.gguf"))
    make_metadata(os.path.join(args.out, "metadata.gguf"))
    make_tiny(args.out)
    os.makedirs(SEEDS, exist_ok=True)
    make_metadata(os.path.join(SEEDS, "metadata.gguf"))
    make_blocks(os.path.join(SEEDS, "blocks.gguf"))
    if args.smollm2:
        make_smollm2(args.smollm2, args.out)


if __name__ == "__main__":
    sys.exit(main())
