#!/usr/bin/env python3
"""The PyTorch peer of xlc's CPU backend: the same GPT as models/gpt.xl
(pre-LN, tied head, tanh GELU, biases everywhere, AdamW, global-norm clip 1,
the issue's benchmark configuration; xlc runs gpt.xl with -D tie=true
-D gelu_approx=tanh)
trained on random byte windows; prints tokens/s of the best mode.

Usage: torch_gpt.py CONFIG STEPS MODE   (CONFIG S or M; MODE eager or jit)
Run it with Debian's python3-torch and OpenBLAS-OpenMP on LD_LIBRARY_PATH
(see bench/run.sh, which measures both peers interleaved).
"""
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {
    "S": dict(d=128, layers=4, heads=4, seq=128, batch=16, vocab=256),
    "M": dict(d=256, layers=6, heads=8, seq=256, batch=8, vocab=256),
}


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
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // self.heads))
        att = att.masked_fill(~mask, -1e9).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(b, s, d)
        x = x + self.o(y)
        return x + self.proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, d, layers, heads, seq, vocab, **_):
        super().__init__()
        self.wte = nn.Parameter(torch.randn(vocab, d) * 0.02)
        self.wpe = nn.Parameter(torch.randn(seq, d) * 0.02)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.register_buffer("mask", torch.tril(torch.ones(seq, seq, dtype=torch.bool)))

    def forward(self, tokens, targets):
        x = self.wte[tokens] + self.wpe
        for blk in self.blocks:
            x = blk(x, self.mask)
        logits = self.ln_f(x) @ self.wte.t()  # tied head
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def main():
    cfg = CONFIGS[sys.argv[1]]
    steps = int(sys.argv[2])
    mode = sys.argv[3]
    torch.manual_seed(0)
    torch.set_num_threads(2)
    model = GPT(**cfg)
    if mode == "jit":
        model = torch.jit.script(model)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01)
    b, s = cfg["batch"], cfg["seq"]

    def step():
        tokens = torch.randint(0, cfg["vocab"], (b, s))
        targets = torch.randint(0, cfg["vocab"], (b, s))
        loss = model(tokens, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    for _ in range(3):  # warm up (and let the JIT specialise)
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    dt = time.perf_counter() - t0
    print(f"{b * s * steps / dt:.1f}")


if __name__ == "__main__":
    main()
