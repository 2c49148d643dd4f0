#!/usr/bin/env python3
"""Golden for PiSSA in PEFT's unconverted form (tests/core/test_pissa_peft.cpp).

A PiSSA adapter saved by PEFT's plain save_pretrained (no
path_initial_model_for_weight_conversion) holds the trained A [r, in] and
B [out, r], relative to the residual base W_res = W - s B0 A0, and its
adapter_config.json keeps init_lora_weights "pissa". PeftModel.from_pretrained
onto the ORIGINAL base runs pissa_init again (the SVD of W, the residual put
in W's place) before the saved A and B overwrite the fresh ones, so the
model is W_res + s B A. This script makes such a folder the way a real run
does and records what PEFT computes with it:

  tests/data/reference/pissa_unconverted/
      base/               the original tiny base as transformers saves it
                          (config.json + model.safetensors, float32), its
                          config marked lwb_tokenizer "byte" (vocab_size 260)
      adapter/            PEFT's save_pretrained output after ten AdamW steps
                          of PiSSA (exact SVD, r = 4, lora_alpha = 8, every
                          linear), float32: adapter_config.json +
                          adapter_model.safetensors
      logits.safetensors  input_ids I64 [B, T]; logits F64 [B, T, V] of
                          PeftModel.from_pretrained(original base, adapter/),
                          evaluated in float64 with make_reference.py's
                          float64 islands (the weights are the float32 ones
                          PEFT loaded and decomposed); metadata: config,
                          versions, and trained_vs_loaded (the relative
                          difference between the trained model's float32
                          logits and the loaded model's, a check that the
                          round trip through the folder is PEFT's own)

Everything is float32 as in a real PEFT run (pissa_init refuses float64);
only the final forward is float64. Rerun with the interpreter described in
make_reference.py:
    /work/venv/bin/python tests/reference/make_pissa_unconverted_golden.py
"""
import json
import os
import platform
import shutil
import sys
import tempfile

import torch

import peft
import safetensors
import transformers
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_reference as ref  # noqa: E402  (MODEL, TARGETS, ADAPTER, base_state, adamw_steps, float64 islands)

# make_reference.py's tiny model with the byte tokenizer's 260 ids: a folder
# without tokenizer files is read with it, and the program's Hugging Face
# export of the residual base (which writes a tokenizer) needs them to fit.
MODEL = dict(ref.MODEL, vocab_size=260)


def logits_f64(model, input_ids):
    model.to(torch.float64)
    with torch.no_grad():
        out = model(input_ids=input_ids).logits.detach().clone().contiguous()
    model.to(torch.float32)
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out_dir = os.path.normpath(os.path.join(here, "..", "data", "reference", "pissa_unconverted"))
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)
    ref.patch_float64_islands()
    config = LlamaConfig(attn_implementation="eager", attention_bias=False, mlp_bias=False,
                         hidden_act="silu", attention_dropout=0.0, **MODEL)
    config._attn_implementation = "eager"
    base = ref.base_state(config)  # float32 here

    g = torch.Generator().manual_seed(ref.SEED + 2)
    input_ids = torch.randint(0, MODEL["vocab_size"], (ref.B, ref.T), generator=g, dtype=torch.int64)
    labels = input_ids.clone()
    labels[:, :ref.PROMPT] = -100

    # Train PiSSA as a float32 run does.
    hf = LlamaForCausalLM(config)
    hf.load_state_dict(base)
    lora = LoraConfig(task_type="CAUSAL_LM", target_modules=ref.TARGETS, init_lora_weights="pissa", bias="none",
                      **ref.ADAPTER)
    model = get_peft_model(hf, lora)
    model.train()
    losses = ref.adamw_steps(model, [p for p in model.parameters() if p.requires_grad], input_ids, labels)
    model.eval()
    with torch.no_grad():
        trained = model(input_ids=input_ids).logits.detach().clone()

    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)
    workdir = tempfile.mkdtemp()
    model.save_pretrained(workdir)  # the unconverted form
    with open(os.path.join(workdir, "adapter_config.json")) as f:
        saved = json.load(f)
    assert saved["init_lora_weights"] == "pissa" and saved["r"] == ref.ADAPTER["r"], saved
    os.makedirs(os.path.join(out_dir, "adapter"))
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        shutil.copy(os.path.join(workdir, name), os.path.join(out_dir, "adapter", name))
    shutil.rmtree(workdir)

    # The original base as transformers saves it.
    original = LlamaForCausalLM(config)
    original.load_state_dict(base)
    original.save_pretrained(os.path.join(out_dir, "base"), safe_serialization=True)
    generation = os.path.join(out_dir, "base", "generation_config.json")
    if os.path.exists(generation):
        os.remove(generation)
    # No tokenizer files: lwb_tokenizer tells the program to use its byte
    # tokenizer (transformers and PEFT ignore the key).
    config_path = os.path.join(out_dir, "base", "config.json")
    with open(config_path) as f:
        hf_config = json.load(f)
    hf_config["lwb_tokenizer"] = "byte"
    with open(config_path, "w") as f:
        json.dump(hf_config, f, indent=2, sort_keys=True)
        f.write("\n")

    # PEFT's own reading of the folder onto the original base.
    fresh = LlamaForCausalLM(config)
    fresh.load_state_dict(base)
    loaded = PeftModel.from_pretrained(fresh, os.path.join(out_dir, "adapter"))
    loaded.eval()
    with torch.no_grad():
        loaded_f32 = loaded(input_ids=input_ids).logits.detach().clone()
    trained_vs_loaded = float((loaded_f32 - trained).norm() / trained.norm())
    assert trained_vs_loaded < 1e-5, trained_vs_loaded
    logits = logits_f64(loaded, input_ids)

    cfg = {"model": MODEL, "targets": ref.TARGETS, "adapter": dict(ref.ADAPTER, init_lora_weights="pissa"),
           "batch": [ref.B, ref.T], "adamw": {"lr": ref.LR, "steps": ref.STEPS}, "losses": losses}
    meta = {
        "format": "pt",
        "config": json.dumps(cfg, sort_keys=True),
        "trained_vs_loaded": repr(trained_vs_loaded),
        "versions": json.dumps({"python": platform.python_version(), "torch": torch.__version__,
                                "transformers": transformers.__version__, "peft": peft.__version__,
                                "safetensors": safetensors.__version__}, sort_keys=True),
    }
    path = os.path.join(out_dir, "logits.safetensors")
    save_file({"input_ids": input_ids.contiguous(), "logits": logits}, path, metadata=meta)
    ref.sort_metadata(path)
    print(f"pissa unconverted: losses {losses[0]:.6f} -> {losses[-1]:.6f}; trained vs PEFT-loaded logits "
          f"{trained_vs_loaded:.2e} -> {out_dir}")


if __name__ == "__main__":
    main()
