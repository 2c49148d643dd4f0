#!/usr/bin/env python3
"""Goldens for the tokenizer files a merged Hugging Face export writes from a
GGUF base (core/data/gguf_to_hf.h; tests/core/test_sources.cpp).

Writes to tests/data/gguf/, with the `gguf` package's GGUFWriter:

  tokenizer_smollm.gguf  a tiny tied llama (1 layer, hidden 16) carrying the
                         smollm fixture's vocabulary (tests/data/tokenizers/smollm,
                         1,500 tokens) as convert_hf_to_gguf.py writes a
                         byte-level one: model gpt2, pre smollm, ChatML specials
                         CONTROL, add_bos_token false, a ChatML chat_template
  tokenizer_llama2.gguf  the same with the llama2 fixture's SentencePiece
                         vocabulary (tokens, scores, token types, <0xHH> bytes;
                         add_bos_token and add_space_prefix true) and a
                         template that uses bos_token and eos_token
  tokenizer_export_golden.json
                         per family, for TEXTS below (special-token strings,
                         unicode, whitespace runs, digits):
                           "reference": the fixture's own tokenizer (the folder
                             the vocabulary came from, through transformers):
                             "plain" = add_special_tokens=False with special
                             strings as text, "special" = add_special_tokens=True
                             with special strings parsed;
                           "gguf_loader": the same from transformers' own GGUF
                             loading (from_pretrained(dir, gguf_file=...)), and
                           "loader_differs": the texts where the two differ.
                         The engine follows the reference (what llama.cpp
                         does); transformers' loader drops SmolLM's digit split
                         and, for SentencePiece, the space prefix after a special
                         token.

Check mode, for an exported folder (outside the tests, e.g. SmolLM2):
    python make_gguf_tokenizer_golden.py --check EXPORTED_DIR --gguf FILE.gguf \\
        [--texts tests/data/tokenizers/texts.jsonl] [--golden tests/data/tokenizers/smollm2-135m/golden.json.zlib]
prints how many texts give other ids with transformers loading EXPORTED_DIR
than with transformers loading the GGUF (and than the golden's reference
pipeline), and whether apply_chat_template agrees.

Rerun (the engine's tests never need Python):
    /work/venv/bin/python tests/reference/make_gguf_tokenizer_golden.py
"""
import argparse
import json
import os
import sys
import zlib

import gguf
import numpy as np
import tokenizers
import transformers
from transformers import AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data")

TEXTS = [
    "Hello world",
    "Hello, world! How are you today?",
    " leading space",
    "trailing space ",
    "two  spaces and   three",
    "\ttab\tseparated\tcolumns",
    "line one\nline two\n\nline four",
    "\n\n",
    "",
    " ",
    "The year 2024 has 365 days; pi is 3.14159.",
    "1234567890",
    "phone: +1 (555) 010-9999",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00fcber",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
    "\u4f60\u597d\uff0c\u4e16\u754c",
    "emoji \U0001F600\U0001F44D\U0001F3FD and \u2764\ufe0f",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "Stra\u00dfe \u2460 \u216b \u00bd",
    "don't won't I'll we've they're",
    "def f(x):\n    return x * 2  # double",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>after",
    "text<|im_end|>",
    "<s>Hello</s>",
    "<s> spaced </s> out",
    "a<unk>b",
    "ALL CAPS and MiXeD",
    "https://example.com/path?q=1&r=two",
    "   \n   indented",
    "\u2581already marked",
    "x" * 40,
]

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
LLAMA_TEMPLATE = ("{{ bos_token }}{% for message in messages %}[{{ message['role'] }}] {{ message['content'] }}"
                  "{{ eos_token }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}")

HIDDEN, FFN, HEADS, KV_HEADS, CONTEXT = 16, 32, 2, 1, 256


def smollm_vocab():
    folder = os.path.join(DATA, "tokenizers", "smollm")
    with open(os.path.join(folder, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    with open(os.path.join(folder, "tokenizer_config.json"), encoding="utf-8") as f:
        config = json.load(f)
    vocab = dict(tj["model"]["vocab"])
    special = {}
    for t in tj["added_tokens"]:
        vocab[t["content"]] = t["id"]
        special[t["id"]] = t["special"]
    tokens = [None] * (max(vocab.values()) + 1)
    for piece, i in vocab.items():
        tokens[i] = piece
    # convert_hf_to_gguf.py: special added tokens CONTROL, other added ones
    # USER_DEFINED, the rest NORMAL.
    types = [(3 if special[i] else 4) if i in special else 1 for i in range(len(tokens))]
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    ids = {t: i for i, t in enumerate(tokens)}
    return dict(model="gpt2", pre="smollm", tokens=tokens, token_types=types, merges=merges,
                bos=ids[config["bos_token"]], eos=ids[config["eos_token"]], unk=ids[config["unk_token"]],
                pad=ids[config["pad_token"]], add_bos=False, add_space_prefix=False,
                chat_template=CHATML), folder


def llama2_vocab():
    folder = os.path.join(DATA, "tokenizers", "llama2")
    with open(os.path.join(folder, "gguf_vocab.json"), encoding="utf-8") as f:
        v = json.load(f)
    v["chat_template"] = LLAMA_TEMPLATE
    return v, folder


def write_gguf(path, v):
    rng = np.random.default_rng(13)
    vocab = len(v["tokens"])
    w = gguf.GGUFWriter(path, arch="llama")
    w.add_name(os.path.splitext(os.path.basename(path))[0])
    w.add_block_count(1)
    w.add_context_length(CONTEXT)
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(vocab)
    w.add_rope_dimension_count(HIDDEN // HEADS)
    w.add_file_type(1)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_tokenizer_model(v["model"])
    if "pre" in v:
        w.add_tokenizer_pre(v["pre"])
    w.add_token_list(v["tokens"])
    if "scores" in v:
        w.add_token_scores(v["scores"])
    w.add_token_types(v["token_types"])
    if "merges" in v:
        w.add_token_merges(v["merges"])
    w.add_bos_token_id(v["bos"])
    w.add_eos_token_id(v["eos"])
    w.add_unk_token_id(v["unk"])
    if "pad" in v:
        w.add_pad_token_id(v["pad"])
    w.add_add_bos_token(v["add_bos"])
    w.add_add_space_prefix(v["add_space_prefix"])
    w.add_chat_template(v["chat_template"])
    hd = HIDDEN // HEADS

    def matrix(rows, cols):
        return (rng.standard_normal((rows, cols)) * 0.02).astype(np.float16)

    w.add_tensor("token_embd.weight", matrix(vocab, HIDDEN))
    w.add_tensor("blk.0.attn_norm.weight", np.ones(HIDDEN, np.float32))
    w.add_tensor("blk.0.attn_q.weight", matrix(HIDDEN, HIDDEN))
    w.add_tensor("blk.0.attn_k.weight", matrix(KV_HEADS * hd, HIDDEN))
    w.add_tensor("blk.0.attn_v.weight", matrix(KV_HEADS * hd, HIDDEN))
    w.add_tensor("blk.0.attn_output.weight", matrix(HIDDEN, HIDDEN))
    w.add_tensor("blk.0.ffn_norm.weight", np.ones(HIDDEN, np.float32))
    w.add_tensor("blk.0.ffn_gate.weight", matrix(FFN, HIDDEN))
    w.add_tensor("blk.0.ffn_up.weight", matrix(FFN, HIDDEN))
    w.add_tensor("blk.0.ffn_down.weight", matrix(HIDDEN, FFN))
    w.add_tensor("output_norm.weight", np.ones(HIDDEN, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def encodings(tok, texts):
    """(plain, special): add_special_tokens=False with special strings as
    text, and add_special_tokens=True with them parsed."""
    backend = tok.backend_tokenizer
    backend.encode_special_tokens = True
    plain = [backend.encode(t, add_special_tokens=False).ids for t in texts]
    backend.encode_special_tokens = False
    special = [tok(t, add_special_tokens=True)["input_ids"] for t in texts]
    return plain, special


def gguf_loader(path):
    return AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))


def make(out):
    golden = {"meta": {"script": "tests/reference/make_gguf_tokenizer_golden.py", "python": sys.version.split()[0],
                       "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                       "gguf": getattr(gguf, "__version__", "?")},
              "texts": TEXTS, "families": {}}
    for family, (vocab, folder) in {"smollm": smollm_vocab(), "llama2": llama2_vocab()}.items():
        path = os.path.join(out, f"tokenizer_{family}.gguf")
        write_gguf(path, vocab)
        ref_plain, ref_special = encodings(AutoTokenizer.from_pretrained(folder), TEXTS)
        gg_plain, gg_special = encodings(gguf_loader(path), TEXTS)
        differs = [i for i in range(len(TEXTS)) if ref_plain[i] != gg_plain[i] or ref_special[i] != gg_special[i]]
        golden["families"][family] = {
            "gguf": os.path.basename(path), "reference_folder": os.path.relpath(folder, os.path.join(HERE, "..")),
            "reference": {"plain": ref_plain, "special": ref_special},
            "gguf_loader": {"plain": gg_plain, "special": gg_special}, "loader_differs": differs}
        print(f"{family}: {len(vocab['tokens'])} tokens -> {path}; transformers' GGUF loader differs from the "
              f"reference on {len(differs)} of {len(TEXTS)} texts")
    with open(os.path.join(out, "tokenizer_export_golden.json"), "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


def check(exported, gguf_path, texts_file, golden_file):
    if texts_file:
        with open(texts_file, encoding="utf-8") as f:
            texts = [json.loads(line) for line in f]
    else:
        texts = TEXTS
    folder_tok = AutoTokenizer.from_pretrained(exported)
    loader_tok = gguf_loader(gguf_path)
    f_plain, f_special = encodings(folder_tok, texts)
    g_plain, g_special = encodings(loader_tok, texts)
    plain = sum(a != b for a, b in zip(f_plain, g_plain))
    special = sum(a != b for a, b in zip(f_special, g_special))
    print(f"{len(texts)} texts: exported folder vs transformers' GGUF loader: {plain} differ (plain), "
          f"{special} differ (special tokens added and parsed)")
    if golden_file:
        with open(golden_file, "rb") as f:
            g = json.loads(zlib.decompress(f.read()[4:]))
        ref = g["plain"]
        diff_folder = sum(a != b for a, b in zip(f_plain, ref))
        diff_loader = sum(a != b for a, b in zip(g_plain, ref))
        print(f"vs {golden_file} ({g['meta'].get('reference', '')}): exported folder {diff_folder} differ, "
              f"transformers' GGUF loader {diff_loader} differ (plain)")
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi 123"},
                {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"}]
    a = folder_tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    b = loader_tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    print("chat template: " + ("the same text" if a == b else f"DIFFERS:\n{a!r}\n{b!r}"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(DATA, "gguf"))
    ap.add_argument("--check", help="an exported Hugging Face folder to compare with --gguf")
    ap.add_argument("--gguf")
    ap.add_argument("--texts")
    ap.add_argument("--golden")
    args = ap.parse_args()
    if args.check:
        check(args.check, args.gguf, args.texts, args.golden)
    else:
        make(os.path.abspath(args.out))


if __name__ == "__main__":
    main()
