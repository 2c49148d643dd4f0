#!/usr/bin/env python3
"""Reference dumps for tests/core/test_reference.cpp (llm.c's test_gpt2 pattern).

Builds a tiny LlamaForCausalLM with Hugging Face transformers, wraps it with
PEFT for each adapter kind (lora, rslora, dora, adalora, pissa, vera), randomises every
trainable tensor (PiSSA's keep their initialisation), and writes what our engine must reproduce to
tests/data/reference/<kind>.safetensors:

  tensors (F64 unless noted; little-endian, standard safetensors):
    model.*, lm_head.weight          base weights under their HF names
    base_model.model.<module>.<suffix>
                                     adapter tensors under the exact keys of
                                     peft.get_peft_model_state_dict (lora_A.weight,
                                     lora_B.weight, lora_magnitude_vector,
                                     lora_A / lora_E / lora_B for AdaLoRA)
    grad.<same PEFT key>             d(total loss)/d(tensor) after one backward
    input_ids  I64 [B, T]            random tokens
    labels     I64 [B, T]            input_ids with positions 0..2 of each row -100
    logits     [B, T, V]             model(input_ids, labels=labels).logits
    train_losses [10]                loss before each of 10 AdamW steps on the batch
  __metadata__ (all values strings):
    config     JSON: model config, adapter kind and hyper-parameters
    loss_ce    cross-entropy alone (repr of a Python float: exact round trip)
    loss_total what PEFT returns: loss_ce, plus orth_reg_weight * regulariser
               for AdaLoRA (PEFT adds it whenever labels are given)
    orth_reg   the regulariser alone (0 except AdaLoRA)
    versions   JSON {python, torch, transformers, peft, safetensors}
    stock_precision_logits_rel, stock_precision_loss_rel: see below

Conventions the C++ test has to know:
  * HF shifts the labels inside the loss: logits[:, :-1] are scored against
    labels[:, 1:] (-100 ignored), mean over the scored positions. Our engine
    takes targets aligned with the inputs, so targets[b, t] = labels[b, t + 1]
    for t < T - 1 and -1 (ignored) at t = T - 1.
  * AdaLoRA: scaling = lora_alpha / (ranknum + 1e-5) with ranknum = init_r;
    regulariser = mean over every lora_A and lora_B of ||A A^T - I||_F and
    ||B^T B - I||_F (not squared). update_and_allocate is never called, so no
    rank is masked during the 10 steps.
  * PiSSA (init_lora_weights="pissa"): PEFT refuses to initialise it in
    float64, so the model is cast to float32 for get_peft_model (the SVD and
    the residual are float32-accurate, as in every PEFT run) and back to
    float64 after. model.* holds the ORIGINAL base (the random base rounded
    to float32, which is what PEFT decomposes); residual.<HF name> the
    residual weights W - s B A that PEFT put in place of the adapted
    linears; the adapter tensors are PEFT's initial A and B (not
    randomised). After the ten steps the adapter is saved with
    save_pretrained(path_initial_model_for_weight_conversion=...):
    converted.<PEFT key> (F64 of its F32) is that rank-2r plain LoRA and the
    metadata's converted_config its adapter_config.json; the script checks
    that the original base with it gives the trained model's logits.
  * DoRA: lora_magnitude_vector is PEFT's initial ||W|| (B = 0 at init) times
    (1 + 0.1 N(0, 1)), so m / ||W + s B A|| is far from 1.
  * VeRA (VeraConfig, peft_type VERA): the trainable tensors are
    vera_lambda_b [out] and vera_lambda_d [r] of every module (0.5 N(0, 1)
    each, so the adapter path is as large as the base's); the frozen shared
    projections base_model.vera_A [r, max_in] and base_model.vera_B
    [max_out, r] are PEFT's own draws from projection_prng_key (float64, the
    script's default dtype) and have no grad.* entry. Also dumped:
      projection_f32.vera_A / .vera_B (F32)  the same key's draws with
                 PyTorch's default float32, what a real PEFT run holds (the
                 engine's generator must match them bit for bit);
      trained_logits  the model's logits after the ten steps; the trained
                 adapter is saved by PEFT's save_pretrained into
                 vera_peft/ beside the dump (adapter_config.json +
                 adapter_model.safetensors, in float32 as a float32 run
                 saves it) for the engine to read;
      ours.logits  PEFT's logits (float64) with the adapter folder that the
                 engine wrote, vera_ours/ beside the dump (see
                 tests/core/test_vera.cpp, which writes it with
                 LWB_REFERENCE_OUT=<this folder>), loaded with
                 PeftModel.from_pretrained; and ours_noproj.logits with the
                 same adapter saved without projections (vera_ours_noproj/),
                 which PEFT draws again from the key in float32.

Precision. Stock transformers is NOT float64 throughout even in a float64
model: the RoPE angles (inv_freq and position * inv_freq) are computed in
float32, LlamaRMSNorm computes its statistics in float32, eager attention
takes the softmax in float32 and ForCausalLMLoss upcasts the logits with
.float(), i.e. down to float32. Against stock HF a float64 engine would
agree only to ~1e-7. To make the dump a genuine float64 reference this
script replaces those four float32 islands with the same formulas in float64
(patch_float64_islands below; nothing else of HF or PEFT is touched). As a
guard that the patches change precision only, every kind is also run once
with the stock code and the relative differences of logits and loss are
recorded (stock_precision_*_rel, expected ~1e-7 and asserted < 1e-5).
Run with --stock to dump stock HF instead (then the C++ F64 tolerances must
be ~1e-6).

Rerun (outside the repository's build; needs Python >= 3.9):
    python3 -m venv /tmp/refenv
    /tmp/refenv/bin/pip install torch transformers peft safetensors
    /tmp/refenv/bin/python tests/reference/make_reference.py
  (a CPU build of torch is enough; run from anywhere: the output folder is
  found relative to this file, or pass --out DIR). The numbers depend only on
  the seeds below and on the library versions recorded in the metadata; the
  engine test reads them and never needs Python.
"""
import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import warnings

import torch
import torch.nn.functional as F

import peft
import safetensors
import transformers
from peft import (AdaLoraConfig, LoraConfig, PeftModel, VeraConfig, get_peft_model, get_peft_model_state_dict,
                  set_peft_model_state_dict)
from peft.tuners.vera.model import _kaiming_init
from safetensors.torch import load_file, save_file
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.models.llama import modeling_llama

KINDS = ["lora", "rslora", "dora", "adalora", "pissa", "vera"]
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
B, T = 2, 12
PROMPT = 3  # labels of the first PROMPT positions of each row are -100
STEPS = 10
LR = 1e-2
SEED = 1234

MODEL = dict(
    hidden_size=32,
    intermediate_size=48,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=64,
    max_position_embeddings=32,
    rms_norm_eps=1e-5,
    rope_theta=10000.0,
    tie_word_embeddings=False,
)
ADAPTER = dict(r=4, lora_alpha=8, lora_dropout=0.0)
ADALORA = dict(init_r=4, target_r=2, lora_alpha=8, total_step=100, orth_reg_weight=0.5,
               tinit=0, tfinal=0, deltaT=1, beta1=0.85, beta2=0.85)
VERA = dict(r=4, vera_dropout=0.0, d_initial=0.1, projection_prng_key=20240516)


# ---- float64 in place of HF's float32 islands --------------------------------
class Precision:
    f64 = True


_orig_rms = modeling_llama.LlamaRMSNorm.forward
_orig_rope = modeling_llama.LlamaRotaryEmbedding.forward
_orig_eager = modeling_llama.eager_attention_forward


def _rms_forward(self, hidden_states):
    if not Precision.f64:
        return _orig_rms(self, hidden_states)
    variance = hidden_states.pow(2).mean(-1, keepdim=True)
    return self.weight * (hidden_states * torch.rsqrt(variance + self.variance_epsilon))


@torch.no_grad()
def _rope_forward(self, x, position_ids):
    if not Precision.f64:
        return _orig_rope(self, x, position_ids)
    cfg = self.config
    dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    theta = MODEL["rope_theta"]
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    freqs = position_ids[..., None].to(torch.float64) * inv_freq.to(x.device)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(x.dtype), emb.sin().to(x.dtype)


def _eager_forward(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    if not Precision.f64:
        return _orig_eager(module, query, key, value, attention_mask, scaling, dropout, **kwargs)
    key_states = modeling_llama.repeat_kv(key, module.num_key_value_groups)
    value_states = modeling_llama.repeat_kv(value, module.num_key_value_groups)
    attn_weights = torch.matmul(query, key_states.transpose(2, 3)) * scaling
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            attn_weights = attn_weights.masked_fill(~attention_mask, float("-inf"))
        else:
            attn_weights = attn_weights + attention_mask
    attn_weights = F.softmax(attn_weights, dim=-1)  # float64, not float32
    attn_weights = F.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value_states).transpose(1, 2).contiguous()
    return attn_output, attn_weights


def causal_lm_loss(logits, labels, vocab_size, ignore_index=-100, **kwargs):
    """ForCausalLMLoss without its .float(): same shift, same mean."""
    if not Precision.f64:
        from transformers.loss.loss_utils import ForCausalLMLoss
        return ForCausalLMLoss(logits, labels, vocab_size, ignore_index=ignore_index, **kwargs)
    labels = F.pad(labels, (0, 1), value=ignore_index)
    shift_labels = labels[..., 1:].contiguous().view(-1)
    return F.cross_entropy(logits.view(-1, vocab_size), shift_labels, ignore_index=ignore_index)


def patch_float64_islands():
    modeling_llama.LlamaRMSNorm.forward = _rms_forward
    modeling_llama.LlamaRotaryEmbedding.forward = _rope_forward
    modeling_llama.eager_attention_forward = _eager_forward


# ---- model and adapters --------------------------------------------------------
def base_state(config):
    """Random base weights: matrices N(0, 0.05^2), norm weights 1 + 0.1 N(0, 1)."""
    torch.manual_seed(SEED)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.05 * torch.randn_like(p))
    return {k: v.clone() for k, v in model.state_dict().items()}


def peft_config(kind):
    if kind == "pissa":
        return LoraConfig(task_type="CAUSAL_LM", target_modules=TARGETS, init_lora_weights="pissa",
                          bias="none", **ADAPTER)
    if kind == "adalora":
        return AdaLoraConfig(task_type="CAUSAL_LM", target_modules=TARGETS, lora_dropout=0.0,
                             **ADALORA)
    if kind == "vera":
        return VeraConfig(task_type="CAUSAL_LM", target_modules=TARGETS, bias="none", save_projection=True,
                          **VERA)
    return LoraConfig(task_type="CAUSAL_LM", target_modules=TARGETS, use_rslora=(kind == "rslora"),
                      use_dora=(kind == "dora"), bias="none", **ADAPTER)


def peft_key(param_name):
    """named_parameters name -> get_peft_model_state_dict key."""
    key = param_name.replace(".default", "")
    if key.endswith("lora_magnitude_vector.weight"):
        key = key[: -len(".weight")]
    return key


def randomise_adapters(model, kind, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            noise = torch.randn(p.shape, generator=g, dtype=p.dtype)
            if "lora_magnitude_vector" in name:
                p.mul_(1.0 + 0.1 * noise)     # PEFT's ||W|| rows, perturbed
            elif "lora_E" in name or "vera_lambda" in name:
                p.copy_(0.5 * noise)
            else:                              # lora_A, lora_B
                p.copy_(0.1 * noise)


def adapter_params(model):
    return [(peft_key(n), p) for n, p in model.named_parameters() if p.requires_grad]


def orth_regulariser(model):
    """AdaLoRA's regulariser as PEFT computes it (for the record only)."""
    total, count = 0.0, 0
    for n, p in model.named_parameters():
        if ("lora_A" in n or "lora_B" in n) and "default" in n:
            cov = p @ p.T if "lora_A" in n else p.T @ p
            total = total + torch.linalg.matrix_norm(cov - torch.eye(cov.shape[0], dtype=cov.dtype))
            count += 1
    return (total / count).item()


def run_kind(kind, config, base, input_ids, labels, out_dir):
    torch.manual_seed(SEED + 1)
    hf = LlamaForCausalLM(config)
    hf.load_state_dict(base)
    # task_type CAUSAL_LM: PeftModelForCausalLM calls AdaLoraModel.forward, which
    # adds the regulariser (a bare PeftModel calls the HF model directly).
    if kind == "pissa":
        # The base PEFT decomposes is the float32 one; dump that as the original.
        base = {k: v.to(torch.float32).to(torch.float64) for k, v in base.items()}
        hf.load_state_dict(base)
        hf.to(torch.float32)  # PEFT's pissa_init refuses float64
        model = get_peft_model(hf, peft_config(kind))
        model.to(torch.float64)
    else:
        model = get_peft_model(hf, peft_config(kind))
        randomise_adapters(model, kind, SEED + 10 + KINDS.index(kind))
    hf.loss_function = causal_lm_loss
    model.train()  # dropout is 0; AdaLoRA's regulariser is added when labels are given

    params = adapter_params(model)
    state = get_peft_model_state_dict(model)
    projections = sorted(k for k in state if k.startswith("base_model.vera_"))  # frozen, shared
    assert projections == (["base_model.vera_A", "base_model.vera_B"] if kind == "vera" else []), projections
    assert sorted(k for k, _ in params) == sorted(set(state.keys()) - set(projections)), (
        sorted(k for k, _ in params), sorted(state.keys()))

    # Stock-precision run, for the record (see the header).
    Precision.f64 = False
    with torch.no_grad():
        stock = model(input_ids=input_ids, labels=labels)
    Precision.f64 = not ARGS.stock

    out = model(input_ids=input_ids, labels=labels)
    logits = out.logits.detach().clone()
    loss_total = out.loss
    loss_ce = float(F.cross_entropy(logits[:, :-1].reshape(-1, config.vocab_size),
                                    labels[:, 1:].reshape(-1), ignore_index=-100))
    orth = orth_regulariser(model) if kind == "adalora" else 0.0
    expected_total = loss_ce + (ADALORA["orth_reg_weight"] * orth if kind == "adalora" else 0.0)
    # Exact in float64; with --stock HF's loss is a float32 number.
    agree = 1e-6 if ARGS.stock else 1e-12
    assert abs(loss_total.item() - expected_total) < agree * max(1.0, expected_total), (
        loss_total.item(), expected_total)
    stock_logits_rel = float((stock.logits - logits).norm() / logits.norm())
    stock_loss_rel = abs(stock.loss.item() - loss_total.item()) / abs(loss_total.item())
    assert stock_logits_rel < 1e-5 and stock_loss_rel < 1e-5, (stock_logits_rel, stock_loss_rel)

    model.zero_grad(set_to_none=True)
    loss_total.backward()
    tensors = {}
    for name, value in base.items():
        tensors[name] = value.to(torch.float64).contiguous()
    for key, p in params:
        tensors[key] = p.detach().clone().contiguous()
        tensors["grad." + key] = p.grad.detach().clone().contiguous()
    tensors["input_ids"] = input_ids.clone()
    tensors["labels"] = labels.clone()
    tensors["logits"] = logits.contiguous()
    if kind == "vera":
        tensors.update(vera_projections(state))
    if kind == "pissa":
        for name, p in hf.named_parameters():
            if name.endswith("base_layer.weight"):
                hf_name = name.replace("base_model.model.", "").replace(".base_layer", "")
                tensors["residual." + hf_name] = p.detach().clone().contiguous()
        workdir = tempfile.mkdtemp()
        init_dir = os.path.join(workdir, "pissa_init")
        model.peft_config["default"].init_lora_weights = True
        model.save_pretrained(init_dir)
        model.peft_config["default"].init_lora_weights = "pissa"

    losses = adamw_steps(model, [p for _, p in params], input_ids, labels)
    tensors["train_losses"] = torch.tensor(losses, dtype=torch.float64)
    if kind == "vera":
        with torch.no_grad():
            tensors["trained_logits"] = model(input_ids=input_ids).logits.detach().clone().contiguous()
        save_vera_folder(model, os.path.join(out_dir, "vera_peft"))
        tensors.update(vera_ours_logits(config, base, input_ids, out_dir))
    converted_config = None
    if kind == "pissa":
        conv_dir = os.path.join(workdir, "converted")
        model.save_pretrained(conv_dir, path_initial_model_for_weight_conversion=init_dir)
        converted = load_file(os.path.join(conv_dir, "adapter_model.safetensors"))
        with open(os.path.join(conv_dir, "adapter_config.json")) as f:
            converted_config = json.load(f)
        for key, value in converted.items():
            tensors["converted." + key] = value.to(torch.float64).contiguous()
        check_conversion(config, base, converted, converted_config, model, input_ids)
        shutil.rmtree(workdir)

    cfg = {
        "model": {k: (v if not isinstance(v, float) else float(v)) for k, v in MODEL.items()},
        "kind": kind,
        "targets": TARGETS,
        "batch": [B, T],
        "prompt_positions_ignored": PROMPT,
        "adamw": {"lr": LR, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0,
                  "steps": STEPS},
        "float64_islands_patched": not ARGS.stock,
    }
    if kind == "pissa":
        r, alpha = ADAPTER["r"], ADAPTER["lora_alpha"]
        cfg["adapter"] = dict(ADAPTER, use_rslora=False, use_dora=False, init_lora_weights="pissa",
                              scaling=alpha / r)
    elif kind == "adalora":
        cfg["adapter"] = dict(ADALORA, lora_dropout=0.0,
                              scaling=ADALORA["lora_alpha"] / (ADALORA["init_r"] + 1e-5))
    elif kind == "vera":
        cfg["adapter"] = dict(VERA, save_projection=True)
    else:
        r, alpha = ADAPTER["r"], ADAPTER["lora_alpha"]
        cfg["adapter"] = dict(ADAPTER, use_rslora=(kind == "rslora"), use_dora=(kind == "dora"),
                              scaling=alpha / math.sqrt(r) if kind == "rslora" else alpha / r)
    meta = {
        "format": "pt",
        **({"converted_config": json.dumps(converted_config, sort_keys=True)} if converted_config else {}),
        "config": json.dumps(cfg, sort_keys=True),
        "loss_ce": repr(loss_ce),
        "loss_total": repr(loss_total.item()),
        "orth_reg": repr(orth),
        "stock_precision_logits_rel": repr(stock_logits_rel),
        "stock_precision_loss_rel": repr(stock_loss_rel),
        "versions": json.dumps({"python": platform.python_version(), "torch": torch.__version__,
                                "transformers": transformers.__version__,
                                "peft": peft.__version__,
                                "safetensors": safetensors.__version__}, sort_keys=True),
    }
    path = os.path.join(out_dir, f"{kind}.safetensors")
    save_file(tensors, path, metadata=meta)
    sort_metadata(path)
    print(f"{kind:8s} loss_ce {loss_ce:.12f} total {loss_total.item():.12f} "
          f"losses {losses[0]:.6f} -> {losses[-1]:.6f}  stock-vs-f64 logits {stock_logits_rel:.2e} "
          f"-> {path} ({os.path.getsize(path)} bytes)")


def adamw_steps(model, params, input_ids, labels):
    """STEPS AdamW steps on the same batch; the loss before each step."""
    opt = torch.optim.AdamW(params, lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad(set_to_none=True)
        loss = model(input_ids=input_ids, labels=labels).loss
        losses.append(loss.item())
        loss.backward()
        opt.step()
    return losses


def check_conversion(config, base, converted, converted_config, trained, input_ids):
    """The original base with the converted rank-2r LoRA is the trained model."""
    hf = LlamaForCausalLM(config)
    hf.load_state_dict(base)
    lora = get_peft_model(hf, LoraConfig(task_type="CAUSAL_LM", target_modules=TARGETS, bias="none",
                                         r=converted_config["r"], lora_alpha=converted_config["lora_alpha"],
                                         lora_dropout=0.0))
    set_peft_model_state_dict(lora, {k: v.to(torch.float64) for k, v in converted.items()})
    with torch.no_grad():
        a = lora(input_ids=input_ids).logits
        b = trained(input_ids=input_ids).logits
    rel = float((a - b).norm() / b.norm())
    assert rel < 1e-5, rel  # the converted tensors are float32
    print(f"pissa    converted rank-{converted_config['r']} LoRA on the original base vs trained: {rel:.2e}")


def vera_projections(state):
    """PEFT's float64 projections (the model's) and the same key's float32
    draws, which is what a PEFT run in PyTorch's default dtype holds."""
    out = {k: state[k].to(torch.float64).contiguous() for k in ("base_model.vera_A", "base_model.vera_B")}
    r, max_in = out["base_model.vera_A"].shape
    max_out = out["base_model.vera_B"].shape[0]
    for dtype, prefix in ((torch.float64, None), (torch.float32, "projection_f32.")):
        previous = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        g = torch.Generator(device="cpu").manual_seed(VERA["projection_prng_key"])
        a = _kaiming_init((r, max_in), generator=g)
        b = _kaiming_init((max_out, r), generator=g)
        torch.set_default_dtype(previous)
        if prefix is None:  # the model's own draws, redone: the same numbers
            assert torch.equal(a, out["base_model.vera_A"]) and torch.equal(b, out["base_model.vera_B"])
        else:
            out[prefix + "vera_A"], out[prefix + "vera_B"] = a.contiguous(), b.contiguous()
    return out


def save_vera_folder(model, folder):
    """The trained adapter as PEFT saves it, in float32 (what a float32 run
    writes): adapter_config.json and adapter_model.safetensors only."""
    workdir = tempfile.mkdtemp()
    model.save_pretrained(workdir)
    os.makedirs(folder, exist_ok=True)
    shutil.copy(os.path.join(workdir, "adapter_config.json"), os.path.join(folder, "adapter_config.json"))
    weights = load_file(os.path.join(workdir, "adapter_model.safetensors"))
    assert sorted(k for k in weights if "vera_A" in k or "vera_B" in k) == ["base_model.vera_A", "base_model.vera_B"]
    save_file({k: v.to(torch.float32).contiguous() for k, v in weights.items()},
              os.path.join(folder, "adapter_model.safetensors"), metadata={"format": "pt"})
    shutil.rmtree(workdir)


def vera_ours_logits(config, base, input_ids, out_dir):
    """PEFT's logits with the folders the engine wrote (vera_ours/, and
    vera_ours_noproj/ without projections), when they exist."""
    out = {}
    for name, key in (("vera_ours", "ours.logits"), ("vera_ours_noproj", "ours_noproj.logits")):
        folder = os.path.join(out_dir, name)
        if not os.path.isdir(folder):
            print(f"vera     {folder} is missing: run test_vera with LWB_REFERENCE_OUT={out_dir} first")
            continue
        hf = LlamaForCausalLM(config)
        hf.load_state_dict(base)
        hf.loss_function = causal_lm_loss
        # Projections drawn again from the key (save_projection false) come
        # in the default dtype, float32 in a real run: drawn so here too
        # (the base stays float64).
        torch.set_default_dtype(torch.float32)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = PeftModel.from_pretrained(hf, folder)
        torch.set_default_dtype(torch.float64)
        unexpected = [str(w.message) for w in caught if "missing" in str(w.message).lower()
                      or "unexpected" in str(w.message).lower()]
        assert not unexpected, unexpected
        model.to(torch.float64)
        with torch.no_grad():
            out[key] = model(input_ids=input_ids).logits.detach().clone().contiguous()
        print(f"vera     PEFT read {folder}")
    return out


def sort_metadata(path):
    """safetensors writes __metadata__ in hash-map order, different every run;
    sort it so that rerunning the script gives byte-identical files."""
    with open(path, "r+b") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
        text = json.dumps(header, separators=(",", ":")).encode()
        assert len(text) <= n
        f.seek(8)
        f.write(text + b" " * (n - len(text)))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(here, "..", "data", "reference"))
    parser.add_argument("--stock", action="store_true",
                        help="keep HF's float32 RoPE/RMSNorm/softmax/loss (agreement ~1e-7 only)")
    parser.add_argument("--kinds", nargs="*", default=KINDS)
    global ARGS
    ARGS = parser.parse_args()
    os.makedirs(ARGS.out, exist_ok=True)

    torch.set_default_dtype(torch.float64)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    patch_float64_islands()
    config = LlamaConfig(attn_implementation="eager", attention_bias=False, mlp_bias=False,
                         hidden_act="silu", attention_dropout=0.0, **MODEL)
    config._attn_implementation = "eager"
    base = base_state(config)

    g = torch.Generator().manual_seed(SEED + 2)
    input_ids = torch.randint(0, MODEL["vocab_size"], (B, T), generator=g, dtype=torch.int64)
    labels = input_ids.clone()
    labels[:, :PROMPT] = -100
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"peft {peft.__version__}, safetensors {safetensors.__version__}, python {sys.version.split()[0]}")
    for kind in ARGS.kinds:
        run_kind(kind, config, base, input_ids, labels, os.path.normpath(ARGS.out))


if __name__ == "__main__":
    main()
