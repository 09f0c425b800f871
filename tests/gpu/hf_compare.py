"""cora's LLaMA against Hugging Face transformers' LlamaForCausalLM on one random model.

Run by scripts/gpu_check.sh on a GPU machine (transformers installed, offline): builds a random
LlamaForCausalLM of the given shape (default Vicuna-7B's), saves it in Hugging Face layout, and
compares, in fp32 and bf16 on CUDA: every prompt position's logits (`cora generate --logits`)
and the greedy continuation (`cora generate` vs `model.generate(do_sample=False)`).
Prints one JSON line per dtype; exits 1 when a check fails.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForCausalLM

p = argparse.ArgumentParser()
p.add_argument("--cora", required=True, help="the cora binary")
p.add_argument("--shape", default="configs/bench/vicuna7b_shape/config.json")
p.add_argument("--layers", type=int, default=0, help="override num_hidden_layers (0 = the shape's)")
p.add_argument("--tokens", type=int, default=64)
p.add_argument("--new", type=int, default=16)
p.add_argument("--out", default=tempfile.mkdtemp(prefix="cora-hf-"))
a = p.parse_args()

shape = json.load(open(a.shape))
if a.layers:
    shape["num_hidden_layers"] = a.layers
cfg = LlamaConfig(**{k: v for k, v in shape.items() if k not in ("architectures", "model_type", "torch_dtype")})
torch.manual_seed(0)
ids = torch.randint(3, cfg.vocab_size, (1, a.tokens))
ids[0, 0] = cfg.bos_token_id
# Tolerances on |logit difference| relative to the largest |logit|: fp32 agrees to rounding;
# bf16 is two implementations each rounding to 8 mantissa bits (cora's CPU test: worst 8 %).
tolerance = {"fp32": (1e-3, 1e-4), "bf16": (0.15, 0.02)}  # (worst, mean)
failed = False
for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
    d = os.path.join(a.out, name)
    torch.manual_seed(1)
    model = LlamaForCausalLM(cfg).to(dtype)
    model.save_pretrained(d, safe_serialization=True)
    model = model.cuda().eval()
    with torch.no_grad():
        ref = model(ids.cuda()).logits[0].float().cpu()
        ref_greedy = model.generate(ids.cuda(), max_new_tokens=a.new, do_sample=False, min_new_tokens=a.new,
                                    pad_token_id=cfg.eos_token_id)[0, a.tokens:].tolist()
    del model
    torch.cuda.empty_cache()
    lf = os.path.join(d, "cora_logits.safetensors")
    run = subprocess.run([a.cora, "generate", "--model", d, "--device", "cuda", "--dtype", name,
                          "--ids", ",".join(map(str, ids[0].tolist())), "--max-new-tokens", str(a.new),
                          "--logits", lf], capture_output=True, text=True)
    if run.returncode != 0:
        print(json.dumps({"dtype": name, "error": run.stderr.strip()[-2000:]}))
        failed = True
        continue
    greedy = [int(x) for x in run.stdout.strip().split(",") if x]
    got = load_file(lf)["logits"]
    diff = (got - ref).abs()
    scale = ref.abs().max().item()
    worst, mean = diff.max().item() / scale, diff.mean().item() / scale
    agree = (got.argmax(-1) == ref.argmax(-1)).float().mean().item()
    same_prefix = next((i for i, (x, y) in enumerate(zip(greedy, ref_greedy)) if x != y), len(greedy))
    ok = worst <= tolerance[name][0] and mean <= tolerance[name][1] and (name == "bf16" or greedy == ref_greedy)
    failed |= not ok
    print(json.dumps({"dtype": name, "layers": cfg.num_hidden_layers, "tokens": a.tokens,
                      "worst_rel": worst, "mean_rel": mean, "argmax_agreement": agree,
                      "greedy_equal": greedy == ref_greedy, "greedy_common_prefix": same_prefix,
                      "ok": ok}))
sys.exit(1 if failed else 0)
