"""The PyTorch peer for `cora bench train|eval` on a GPU: Hugging Face's LlamaForCausalLM (random
bf16 weights of the given shape) with CoRA's per-sample low-rank deltas computed as the official
code does — a forward hook per targeted projection adding (alpha/r)·(dropout(x)·W_c[b])·B^T,
x·W_c recomputed in every module — full-vocabulary logits, BCE on the "Yes" logit of the last
position, AdamW over the generator stand-in and the B's. Prints one JSON line per mode with
samples/s and MFU (FLOPs counted as cora's bench counts them, over --peak-tflops).
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM

p = argparse.ArgumentParser()
p.add_argument("--shape", default="configs/bench/vicuna7b_shape/config.json")
p.add_argument("--batch", type=int, default=8)
p.add_argument("--tokens", type=int, default=160)
p.add_argument("--rank", type=int, default=16)
p.add_argument("--alpha", type=float, default=32)
p.add_argument("--cf-dim", type=int, default=256)
p.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the GPU (H100/H200 SXM: 989)")
p.add_argument("--reps", type=int, default=5)
a = p.parse_args()

shape = json.load(open(a.shape))
cfg = LlamaConfig(**{k: v for k, v in shape.items() if k not in ("architectures", "model_type", "torch_dtype")})
torch.manual_seed(0)
with torch.device("cuda"):
    model = LlamaForCausalLM(cfg).to(torch.bfloat16).eval()
for q in model.parameters():
    q.requires_grad_(False)
D, r, B, T = cfg.hidden_size, a.rank, a.batch, a.tokens
dev = "cuda"
# The generator stand-in (its FLOPs are small beside the LLM's): [B, 2·d_cf] -> W_c [B, D, r].
gen = torch.nn.Sequential(torch.nn.Linear(2 * a.cf_dim, 512), torch.nn.GELU(), torch.nn.Linear(512, D * r)).to(dev)
Bs, hooks, state = [], [], {}
for layer in model.model.layers:
    for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj, layer.self_attn.o_proj):
        b = torch.zeros(proj.out_features, r, device=dev, requires_grad=True)
        Bs.append(b)

        def hook(mod, inp, out, b=b):
            x = F.dropout(inp[0], 0.05, mod.training)
            h = torch.bmm(x, state["wc"].to(x.dtype))  # per module, as the official code
            return out + (a.alpha / r) * h @ b.to(x.dtype).t()

        hooks.append(proj.register_forward_hook(hook))
opt = torch.optim.AdamW(list(gen.parameters()) + Bs, lr=1e-3, weight_decay=1e-3)
ids = torch.randint(3, cfg.vocab_size, (B, T), device=dev)
mask = torch.ones(B, T, dtype=torch.long, device=dev)
emb = torch.randn(B, 2 * a.cf_dim, device=dev)
labels = torch.randint(0, 2, (B,), device=dev).float()
yes = 3869


def step(training):
    state["wc"] = F.normalize(gen(emb), dim=-1).view(B, D, r)
    logits = model(input_ids=ids, attention_mask=mask).logits  # full vocabulary, every position
    score = logits[:, -1, yes].float()
    if training:
        loss = F.binary_cross_entropy_with_logits(score, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.cuda.synchronize()


# FLOPs as cora's bench counts them: projections + deltas + causal attention (+ lm_head here).
L, I, H = cfg.num_hidden_layers, cfg.intermediate_size, cfg.num_attention_heads
kv = cfg.num_key_value_heads * (D // H)
per_tok = 2 * L * (2 * D * D + 2 * D * kv + 3 * D * I + 4 * 2 * D * r) + 2 * D * cfg.vocab_size
attn = 2 * L * 2 * B * T * T * D / 2
fwd = B * T * per_tok + attn
for training in (True, False):
    model.train(training)
    ctx = torch.enable_grad() if training else torch.no_grad()
    with ctx:
        step(training)
        t0 = time.time()
        for _ in range(a.reps):
            step(training)
        dt = (time.time() - t0) / a.reps
    flops = (2 * fwd if training else fwd)  # frozen LLM: input gradients only in the backward
    print(json.dumps({"bench": "peer_" + ("train" if training else "eval"), "batch": B, "tokens": T,
                      "samples_per_s": B / dt, "tflops": flops / dt / 1e12,
                      "mfu": flops / dt / 1e12 / a.peak_tflops,
                      "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30}))
