#!/usr/bin/env python3
"""Python `tokenizers` encode speed on one core, measured as bench_tokenizer
measures this engine (see tests/bench/bench_tokenizer.cpp):
    RAYON_NUM_THREADS=1 python3 tests/bench/tokenizer_speed.py [TOKENIZER_DIR] [TEXTS_JSONL]
"""
import json
import os
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
import tokenizers  # noqa: E402  (after the thread settings)

here = os.path.dirname(os.path.abspath(__file__))
data = os.path.join(here, "..", "data", "tokenizers")
folder = sys.argv[1] if len(sys.argv) > 1 else os.path.join(data, "smollm")
texts_file = sys.argv[2] if len(sys.argv) > 2 else os.path.join(data, "texts.jsonl")
tok = tokenizers.Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
texts = [json.loads(line) for line in open(texts_file, encoding="utf-8")]
document = ""
while len(document.encode()) < 2_000_000:
    document += "".join(t + "\n" for t in texts)
doc_bytes = len(document.encode())
line_bytes = sum(len(t.encode()) for t in texts)


def best_of_3(f):
    best = 1e30
    for _ in range(3):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best


doc_s = best_of_3(lambda: tok.encode(document, add_special_tokens=False))
lines_s = best_of_3(lambda: [tok.encode(t, add_special_tokens=False) for t in texts])
batch_s = best_of_3(lambda: tok.encode_batch(texts, add_special_tokens=False))
print(f"tokenizers {tokenizers.__version__}, {folder} ({tok.get_vocab_size()} tokens), {len(texts)} texts")
print(f"document: {doc_bytes / 1e6:.2f} MB in {doc_s:.3f} s: {doc_bytes / 1e6 / doc_s:.2f} MB/s")
print(f"lines:    {line_bytes / 1e6:.2f} MB in {lines_s:.3f} s: {line_bytes / 1e6 / lines_s:.2f} MB/s (Python loop)")
print(f"batch:    {line_bytes / 1e6:.2f} MB in {batch_s:.3f} s: {line_bytes / 1e6 / batch_s:.2f} MB/s (encode_batch)")
