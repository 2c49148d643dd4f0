#!/usr/bin/env python3
"""Goldens for tests/core/test_sources.cpp: real model folders end to end.

Writes to tests/data/real/ (no hub needed; every file is made here by the real
libraries):

  llama3_hf/     a Llama-3-style Hugging Face folder saved by transformers:
                 LlamaForCausalLM with random weights, rope_type llama3
                 (factor 8, low 1, high 4, original context 32, so the head's
                 frequencies are kept, interpolated and divided), bf16
                 weights sharded by save_pretrained(max_shard_size="150KB"),
                 the byte-level BPE tokenizer of tests/data/tokenizers/llama3
                 (Split(Llama-3 regex) + ByteLevel, <|begin_of_text|> added)
                 and the Llama-3 chat template (chat_template.jinja).
                 vocab_size 1536 > the tokenizer's 1505 ids, as real models pad it.
  llama3_golden.safetensors
                 per case i: "ids.i" I32 [n] (transformers' tokenizer: text
                 with add_special_tokens=True; the last case a conversation
                 through apply_chat_template), "logits.i" F32 [n, 192] of
                 transformers loading the folder in float32 at every 8th
                 vocabulary id ("vocab_ids") and "argmax.i" over all of it;
                 "peft.i" and "peft_argmax.i": the same with the PEFT adapter
                 below. Metadata:
                 the cases' texts and messages, library versions.
  peft_full_names/
                 a PEFT LoRA (r 4, alpha 8, target_modules "all-linear",
                 random A and B) on llama3_hf, saved by PEFT: with 14 targeted
                 modules PEFT writes full module names
                 ("model.layers.0.self_attn.o_proj").

  fixture.whl, fixture.json
                 a small zip made by Python's zipfile, standing in for a wheel:
                 "pkg/model.bin" (deflated) and "pkg/notes.txt" (stored); the
                 JSON holds each member's hashlib SHA-256 and size.

With --smollm2 FILE (SmolLM2-135M-Instruct.Q4_1.gguf, see the README's
`fetch smollm2`) it also writes smollm2_text_golden.safetensors: for each case
transformers' ids ("ids.i", AutoTokenizer from the GGUF; the last case a
conversation through the GGUF's chat template with a generation prompt), the
logits of AutoModelForCausalLM from the same GGUF at every 48th vocabulary id
("logits.i" F32 [n, 1024]) and the full-vocabulary argmax ("argmax.i").

Rerun (the engine's tests never need Python):
    python3 -m venv /tmp/realenv
    /tmp/realenv/bin/pip install torch transformers peft tokenizers safetensors gguf
    /tmp/realenv/bin/python tests/reference/make_real_model_golden.py [--smollm2 FILE]
"""
import argparse
import hashlib
import json
import os
import platform
import shutil
import zipfile

import numpy as np
import torch
from safetensors.numpy import save_file

import peft
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(TESTS, "data", "real")

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "def add(a, b):\n    return a + b  # 2024-12-31",
    "Ünïcödé, emoji 🙂 and 漢字 mixed in; it's fine, isn't it?",
]
MESSAGES = [
    {"role": "system", "content": "You answer briefly."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy?"},
]


def versions():
    return {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
            "python": platform.python_version()}


def make_llama3_folder(folder):
    tok_dir = os.path.join(TESTS, "data", "tokenizers", "llama3")
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(tok_dir, "tokenizer.json"),
                                  bos_token="<|begin_of_text|>", eos_token="<|eot_id|>")
    with open(os.path.join(TESTS, "data", "chat_templates", "llama3.jinja")) as f:
        tok.chat_template = f.read()
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=1536, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      rms_norm_eps=1e-5, tie_word_embeddings=False,
                      rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                       "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                       "original_max_position_embeddings": 32},
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():  # larger weights than the 0.02 default make the logits differ visibly
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.08)
    shutil.rmtree(folder, ignore_errors=True)
    model.to(torch.bfloat16).save_pretrained(folder, max_shard_size="150KB")
    tok.save_pretrained(folder)
    return tok


def cases_of(tok):
    ids = [tok(t)["input_ids"] for t in TEXTS]
    chat = tok.apply_chat_template(MESSAGES, tokenize=True, add_generation_prompt=True)
    ids.append(list(chat["input_ids"] if isinstance(chat, dict) or hasattr(chat, "keys") else chat))
    return ids


def logits_of(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().numpy()


def make_llama3():
    folder = os.path.join(OUT, "llama3_hf")
    tok = make_llama3_folder(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    cases = cases_of(AutoTokenizer.from_pretrained(folder))
    vocab_ids = np.arange(0, model.config.vocab_size, 8, dtype=np.int32)
    out = {"vocab_ids": vocab_ids}
    for i, ids in enumerate(cases):
        logits = logits_of(model, ids)
        out[f"ids.{i}"] = np.array(ids, dtype=np.int32)
        out[f"logits.{i}"] = np.ascontiguousarray(logits[:, vocab_ids])
        out[f"argmax.{i}"] = logits.argmax(axis=1).astype(np.int32)
    torch.manual_seed(1)
    adapted = peft.get_peft_model(model, peft.LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                                         init_lora_weights=False))
    adapter = os.path.join(OUT, "peft_full_names")
    shutil.rmtree(adapter, ignore_errors=True)
    adapted.save_pretrained(adapter)
    os.remove(os.path.join(adapter, "README.md"))  # PEFT's model card template
    for i, ids in enumerate(cases):
        logits = logits_of(adapted, ids)
        out[f"peft.{i}"] = np.ascontiguousarray(logits[:, vocab_ids])
        out[f"peft_argmax.{i}"] = logits.argmax(axis=1).astype(np.int32)
    meta = {"texts": json.dumps(TEXTS), "messages": json.dumps(MESSAGES), "versions": json.dumps(versions())}
    save_file(out, os.path.join(OUT, "llama3_golden.safetensors"), metadata=meta)
    with open(os.path.join(adapter, "adapter_config.json")) as f:
        print("PEFT target_modules:", json.load(f)["target_modules"])


def make_fixture_wheel():
    rng = np.random.default_rng(7)
    members = {"pkg/model.bin": bytes(rng.integers(0, 16, 20000, dtype=np.uint8)) * 3,
               "pkg/notes.txt": b"a member stored without compression\n"}
    with zipfile.ZipFile(os.path.join(OUT, "fixture.whl"), "w") as z:
        z.writestr(zipfile.ZipInfo("pkg/model.bin", (2024, 1, 1, 0, 0, 0)), members["pkg/model.bin"],
                   compress_type=zipfile.ZIP_DEFLATED)
        z.writestr(zipfile.ZipInfo("pkg/notes.txt", (2024, 1, 1, 0, 0, 0)), members["pkg/notes.txt"],
                   compress_type=zipfile.ZIP_STORED)
    info = {name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)} for name, data in members.items()}
    with open(os.path.join(OUT, "fixture.json"), "w") as f:
        json.dump(info, f, indent=1)


def make_smollm2(path):
    folder, name = os.path.split(os.path.abspath(path))
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
    cases = cases_of(tok)
    vocab_ids = np.arange(0, model.config.vocab_size, 48, dtype=np.int32)
    out = {"vocab_ids": vocab_ids}
    for i, ids in enumerate(cases):
        logits = logits_of(model, ids)
        out[f"ids.{i}"] = np.array(ids, dtype=np.int32)
        out[f"logits.{i}"] = np.ascontiguousarray(logits[:, vocab_ids])
        out[f"argmax.{i}"] = logits.argmax(axis=1).astype(np.int32)
    meta = {"texts": json.dumps(TEXTS), "messages": json.dumps(MESSAGES), "versions": json.dumps(versions())}
    save_file(out, os.path.join(OUT, "smollm2_text_golden.safetensors"), metadata=meta)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smollm2", help="SmolLM2-135M-Instruct.Q4_1.gguf")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    make_llama3()
    make_fixture_wheel()
    if args.smollm2:
        make_smollm2(args.smollm2)


if __name__ == "__main__":
    main()
