#!/usr/bin/env python3
"""The tinygrad peer of xlc's CPU backend: torch_gpt.py's GPT (the same
model, initialisation scale, AdamW and clip; see peer_common.py) with the
whole train step (forward, backward, global-norm clip, tinygrad's AdamW)
captured by TinyJit on tinygrad's CPU device. Prints tokens/s.

Usage: tinygrad_gpt.py CONFIG STEPS [--check]   (CONFIG S or M)
  --check prints the losses of a few steps on one batch instead.
Run it with bench/.venv's python (bench/peers/setup.sh); bench/run.sh with
PEERS=all does. tinygrad's CPU device compiles its kernels with clang
(CC=clang-19 where clang is not on PATH) for DEV=CPU's arch, -march=native
by default; DEV=CPU:CLANG:x86_64,haswell keeps them to AVX2 and FMA. Its
kernels run on NUM_CPU_THREADS threads (default: the CPUs this process may
use).
"""
import math

import peer_common

from tinygrad import Context, Device, Tensor, TinyJit, dtypes, nn


class GPT:
    def __init__(self, cfg):
        self.cfg = cfg
        self.p = {k: Tensor(a).realize() for k, a in peer_common.numpy_init(cfg).items()}
        self.emb = nn.Embedding(cfg["vocab"], cfg["d"])
        self.emb.weight = self.p["wte"]  # tied with the head below

    def __call__(self, tokens, targets):
        p, cfg = self.p, self.cfg
        b, s = tokens.shape
        d, nh = cfg["d"], cfg["heads"]
        dh = d // nh

        def lin(name, h):
            return h @ p[name + ".w"] + p[name + ".b"]

        def ln(name, h):
            return h.layernorm(eps=1e-5) * p[name + ".w"] + p[name + ".b"]

        def heads(t):
            return t.reshape(b, s, nh, dh).transpose(1, 2)

        mask = Tensor.ones(s, s, dtype=dtypes.bool).tril()
        x = self.emb(tokens) + p["wpe"]
        for i in range(cfg["layers"]):
            h = ln(f"h{i}.ln1", x)
            q, k, v = (heads(lin(f"h{i}.{n}", h)) for n in "qkv")
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(dh))
            att = mask.where(att, -1e9).softmax(-1)
            y = (att @ v).transpose(1, 2).reshape(b, s, d)
            x = x + lin(f"h{i}.o", y)
            x = x + lin(f"h{i}.proj", lin(f"h{i}.fc", ln(f"h{i}.ln2", x)).gelu(approximate="tanh"))
        logits = ln("ln_f", x) @ p["wte"].T  # tied head
        return logits.sparse_categorical_crossentropy(targets)


def main():
    cfg, steps, _, check = peer_common.parse("tinygrad_gpt.py S|M|L STEPS [--check]")
    model = GPT(cfg)
    params = list(model.p.values())
    opt = nn.optim.AdamW(params, lr=peer_common.LR, b1=peer_common.BETAS[0], b2=peer_common.BETAS[1],
                         eps=peer_common.EPS, weight_decay=peer_common.WD)

    @TinyJit
    def jstep(tokens, targets):
        with Context(TRAINING=1):
            opt.zero_grad()
            loss = model(tokens, targets).backward()
            # torch.nn.utils.clip_grad_norm_: scale by clip / (norm + 1e-6) when below 1.
            norm = Tensor.stack(*[t.grad.square().sum() for t in params]).sum().sqrt()
            scale = (peer_common.CLIP / (norm + 1e-6)).minimum(1.0)
            for t in params:
                t.grad = t.grad * scale
            return loss.realize(*opt.schedule_step())

    batch = peer_common.numpy_batches(cfg)

    def step(tokens, targets):
        return jstep(Tensor(tokens).realize(), Tensor(targets).realize())

    def sync():
        Device[Device.DEFAULT].synchronize()

    if check:
        peer_common.check(step, batch, sync, lambda loss: loss.item(), cfg,
                          f"tinygrad ({Device.DEFAULT}, {type(Device[Device.DEFAULT].renderer).__name__})")
    peer_common.bench(step, batch, sync, cfg, steps)


if __name__ == "__main__":
    main()
