#!/usr/bin/env python3
"""The PyTorch peer of xlc's CPU backend: the same GPT as models/gpt.xl
(pre-LN, tied head, tanh GELU, biases everywhere, AdamW, global-norm clip 1,
the issue's benchmark configuration; xlc runs gpt.xl with -D tie=true
-D gelu_approx=tanh; peer_common.py has the details all peers share)
trained on random byte windows; prints tokens/s of the given mode.

Usage: torch_gpt.py CONFIG STEPS MODE [--check]
  CONFIG S, M or L; MODE eager, jit (torch.jit.script) or compile
  (torch.compile of the model and of the clip-and-AdamW step; PyTorch 2);
  sdpa and sdpa-compile are eager and compile with PyTorch 2's fused
  attention (scaled_dot_product_attention) in place of the explicit one.
  --check prints the losses of a few steps on one batch instead.
bench/run.sh runs eager and jit with Debian's python3-torch 1.13 and
OpenBLAS-OpenMP on LD_LIBRARY_PATH, and with PEERS=all eager and compile
with pip's PyTorch 2 in bench/.venv (bench/peers/setup.sh).
"""
import logging
import math
import os

import peer_common

import torch
import torch.nn as nn
import torch.nn.functional as F

class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.ln2 = nn.LayerNorm(d)
        self.fc = nn.Linear(d, 4 * d)
        self.proj = nn.Linear(4 * d, d)

    def forward(self, x, mask):
        b, s, d = x.shape
        h = self.ln1(x)
        q = self.q(h).view(b, s, self.heads, d // self.heads).transpose(1, 2)
        k = self.k(h).view(b, s, self.heads, d // self.heads).transpose(1, 2)
        v = self.v(h).view(b, s, self.heads, d // self.heads).transpose(1, 2)
        y = self.attend(q, k, v, mask).transpose(1, 2).reshape(b, s, d)
        x = x + self.o(y)
        return x + self.proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))

    def attend(self, q, k, v, mask):
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
        return att.masked_fill(~mask, -1e9).softmax(-1) @ v


class BlockSDPA(Block):
    """Block with PyTorch 2's fused attention (scaled_dot_product_attention,
    causal): its flash kernel on the CPU never stores the probabilities."""

    def attend(self, q, k, v, mask):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)


class GPT(nn.Module):
    def __init__(self, d, layers, heads, seq, vocab, sdpa=False, **_):
        super().__init__()
        self.wte = nn.Parameter(torch.randn(vocab, d) * 0.02)
        self.wpe = nn.Parameter(torch.randn(seq, d) * 0.02)
        block = BlockSDPA if sdpa else Block
        self.blocks = nn.ModuleList(block(d, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.register_buffer("mask", torch.tril(torch.ones(seq, seq, dtype=torch.bool)))

    def forward(self, tokens, targets):
        x = self.wte[tokens] + self.wpe
        for blk in self.blocks:
            x = blk(x, self.mask)
        logits = self.ln_f(x) @ self.wte.t()  # tied head
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def main():
    cfg, steps, mode, check = peer_common.parse("torch_gpt.py S|M|L STEPS eager|jit|compile|sdpa|sdpa-compile [--check]",
                                                ("eager", "jit", "compile", "sdpa", "sdpa-compile"))
    torch.manual_seed(0)
    torch.set_num_threads(2)
    label, sdpa = mode, mode.startswith("sdpa")
    if sdpa and not hasattr(F, "scaled_dot_product_attention"):
        raise SystemExit(f"torch_gpt.py: mode {mode} needs PyTorch 2, this is {torch.__version__}")
    mode = {"sdpa": "eager", "sdpa-compile": "compile"}.get(mode, mode)
    model = GPT(**cfg, sdpa=sdpa)
    if mode == "jit":
        model = torch.jit.script(model)
    elif mode == "compile":
        if not hasattr(torch, "compile"):
            raise SystemExit(f"torch_gpt.py: mode compile needs PyTorch 2, this is {torch.__version__}")
        # Quiet Dynamo's warnings (that the optimizer's profiler annotation is
        # dropped from the compiled graph); errors still print.
        torch._logging.set_logs(dynamo=logging.ERROR)
        model = torch.compile(model)
    params = list(model.parameters())
    lr, betas, eps, wd, clip = (getattr(peer_common, n) for n in ("LR", "BETAS", "EPS", "WD", "CLIP"))
    opt = torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=wd)

    def update():
        torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()

    if mode == "compile":
        update = torch.compile(update)
    b, s = cfg["batch"], cfg["seq"]

    def batch():
        return torch.randint(0, cfg["vocab"], (b, s)), torch.randint(0, cfg["vocab"], (b, s))

    # PRECISION=bf16 (bench/run.sh): the forward under CPU autocast, bf16
    # matmuls with f32 master weights, as xlc's -D precision=bf16.
    autocast = os.environ.get("PRECISION", "f32") == "bf16"

    def step(tokens, targets):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = model(tokens, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        update()
        return loss.detach()

    if check:
        peer_common.check(step, batch, lambda: None, float, cfg, f"torch {torch.__version__} {label}")
    peer_common.bench(step, batch, lambda: None, cfg, steps)


if __name__ == "__main__":
    main()
