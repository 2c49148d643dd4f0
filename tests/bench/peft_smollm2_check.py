#!/usr/bin/env python3
"""A LoRA trained by this program on SmolLM2-135M-Instruct, loaded by PEFT on
top of transformers' SmolLM2 (read from the same GGUF), against this program's
merged export of the same adapter loaded by transformers: the largest
relative logit difference over a few texts and a chat, and whether the
argmax agrees everywhere. A check for the closing note of issue 13, not a
test (the suite never needs the model or Python):

    lora-workbench fetch smollm2
    lora-workbench train ... --set model.preset=smollm2-135m ...   # any LoRA
    lora-workbench export adapter NAME --out ADAPTER
    lora-workbench export adapter NAME --merged --out MERGED
    lora-workbench export adapter NAME --merged --format gguf --out MERGED.gguf   # optional
    /work/venv/bin/python tests/bench/peft_smollm2_check.py GGUF ADAPTER MERGED [MERGED.gguf]

With MERGED.gguf, transformers also loads the merged GGUF export (tokenizer
and weights) and its logits are compared with the merged folder's.

transformers cannot load a .gguf file from base_model_name_or_path alone (it
needs the folder and gguf_file=), so the base is loaded here and the adapter
put on it with PeftModel.from_pretrained.
"""
import json
import os
import sys

import peft
import torch
import transformers

gguf, adapter, merged = sys.argv[1:4]
merged_gguf = sys.argv[4] if len(sys.argv) > 4 else None
with open(os.path.join(adapter, "adapter_config.json")) as f:
    config = json.load(f)
print("base_model_name_or_path:", config["base_model_name_or_path"], "| target_modules:", config["target_modules"])
folder, name = os.path.split(os.path.abspath(gguf))
tok = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
base = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
adapted = peft.PeftModel.from_pretrained(base, adapter).eval()
exported = transformers.AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval()
if merged_gguf:
    g_folder, g_name = os.path.split(os.path.abspath(merged_gguf))
    g_tok = transformers.AutoTokenizer.from_pretrained(g_folder, gguf_file=g_name)
    g_model = transformers.AutoModelForCausalLM.from_pretrained(g_folder, gguf_file=g_name, dtype=torch.float32).eval()

texts = ["The capital of France is", "def add(a, b):\n    return a + b"]
chat = tok.apply_chat_template([{"role": "user", "content": "Capital of Peru? Answer in code."}], tokenize=False,
                               add_generation_prompt=True)
worst, agree, total = 0.0, 0, 0
with torch.no_grad():
    for text in texts + [chat]:
        ids = tok(text, return_tensors="pt", add_special_tokens=text is not chat).input_ids
        a = adapted(ids).logits[0].double()
        b = exported(ids).logits[0].double()
        rel = ((a - b).abs().max() / b.abs().max()).item()
        worst = max(worst, rel)
        agree += int((a.argmax(-1) == b.argmax(-1)).sum())
        total += ids.shape[1]
        print(f"{ids.shape[1]:3d} tokens: relative difference {rel:.3g} (PEFT vs the merged folder)")
        if merged_gguf:
            g_ids = g_tok(text, return_tensors="pt", add_special_tokens=text is not chat).input_ids
            assert torch.equal(g_ids, ids), "the merged GGUF's tokenizer gives other ids"
            g = g_model(ids).logits[0].double()
            print(f"           merged GGUF vs merged folder: {((g - b).abs().max() / b.abs().max()).item():.3g}")
    # What the adapter learnt: the merged model's answer, greedily.
    ids = tok(chat, return_tensors="pt", add_special_tokens=False).input_ids
    out = adapted.generate(ids, max_new_tokens=12, do_sample=False)
    print("PEFT answer:", repr(tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)))
print(f"worst relative difference {worst:.3g}; argmax agrees at {agree} of {total} positions; "
      f"transformers {transformers.__version__}, peft {peft.__version__}, torch {torch.__version__}")
