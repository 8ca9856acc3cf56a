#!/usr/bin/env python3
"""The PyTorch counterpart of models/bert.xl, for `xlc experiment speed`:
the same BERT-style encoder, shapes, losses and train settings, trained on
random byte windows; prints tokens/s of the given mode, like torch_gpt.py.

The model (bert.xl's defaults): post-LN, x = LN(wte[tokens] + wpe), then per
layer x = LN(x + attn(x)) and x = LN(x + mlp(x)) with exact (erf) GELU,
attention scores masked by pad_mask with -1e9 (all true: windows have no
padding); two losses: mlm_loss, the cross-entropy of LN(gelu(dense(x))) @
wte^T at the 15% masked positions (never position 0; the token there
replaced by byte 0), and cls_loss, the cross-entropy of cls(tanh(pool(x[:,
0]))) over 4 classes (label: first byte mod 4). Initialisation as xlc's:
wte, wpe normal(0.02); Linear weights xavier_normal (cls with gain 0.02),
biases 0; LayerNorm 1 and 0, eps 1e-5. The train block's settings: the
gradnorm combiner (each task's gradient divided by its global norm, then
summed; two backward passes, as xlc's one Grad per task), a global-norm
clip of 1, AdamW (lr 1e-4, betas 0.9/0.999, eps 1e-8, weight decay 0.01 on
parameters of rank 2 and up).

Usage: torch_bert.py CONFIG STEPS MODE [--check]
  CONFIG S (bert.xl's defaults: d=128, 4 layers, 4 heads, seq 128, batch
  16), M (d=256, 6 layers, 8 heads, seq 256, batch 8) or T (tiny: d=32, 1
  layer, 2 heads, seq 32, batch 4); MODE eager or jit (torch.jit.script).
  PRECISION=bf16 runs the forward under torch.autocast("cpu", bfloat16).
  --check prints the losses of a few steps on one batch instead.
"""
import math
import os
import sys

import peer_common

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {name: dict(cfg, classes=4) for name, cfg in peer_common.CONFIGS.items()}
LR = 1e-4
MASK_RATE = 0.15


def linear(fan_in, fan_out, gain=1.0):
    lin = nn.Linear(fan_in, fan_out)
    nn.init.xavier_normal_(lin.weight, gain)
    nn.init.zeros_(lin.bias)
    return lin


class Layer(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (linear(d, d) for _ in range(4))
        self.ln1 = nn.LayerNorm(d)
        self.fc = linear(d, 4 * d)
        self.proj = linear(4 * d, d)
        self.ln2 = nn.LayerNorm(d)

    def forward(self, x, pad_mask):
        b, s, d = x.shape
        dh = d // self.heads
        q = self.q(x).view(b, s, self.heads, dh).transpose(1, 2)
        k = self.k(x).view(b, s, self.heads, dh).transpose(1, 2)
        v = self.v(x).view(b, s, self.heads, dh).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(dh))
        att = att.masked_fill(~pad_mask.view(b, 1, 1, s), -1e9).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(b, s, d)
        x = self.ln1(x + self.o(y))
        return self.ln2(x + self.proj(F.gelu(self.fc(x))))


class BERT(nn.Module):
    def __init__(self, d, layers, heads, seq, vocab, classes, **_):
        super().__init__()
        self.wte = nn.Parameter(torch.randn(vocab, d) * 0.02)
        self.wpe = nn.Parameter(torch.randn(seq, d) * 0.02)
        self.ln_emb = nn.LayerNorm(d)
        self.layers = nn.ModuleList(Layer(d, heads) for _ in range(layers))
        self.mlm_dense = linear(d, d)
        self.mlm_ln = nn.LayerNorm(d)
        self.pool = linear(d, d)
        self.cls = linear(d, classes, gain=0.02)

    def forward(self, tokens, pad_mask, mlm_targets, mlm_mask, labels):
        x = self.ln_emb(self.wte[tokens] + self.wpe)
        for layer in self.layers:
            x = layer(x, pad_mask)
        # .float(): PyTorch 1.13's CPU autocast leaves layer_norm out of its
        # lists, and eager layer_norm refuses a bf16 input with f32 weights.
        t = self.mlm_ln(F.gelu(self.mlm_dense(x)).float())
        logits = (t @ self.wte.t()).float()  # the loss in f32, as xlc's precision pass keeps it
        w = mlm_mask.reshape(-1).float()
        nll = F.cross_entropy(logits.view(-1, logits.shape[-1]), mlm_targets.reshape(-1), reduction="none")
        mlm_loss = (nll * w).sum() / w.sum().clamp(min=1.0)
        pooled = torch.tanh(self.pool(x[:, 0]))
        cls_loss = F.cross_entropy(self.cls(pooled).float(), labels)
        return mlm_loss, cls_loss


def main():
    args = [a for a in sys.argv[1:] if a != "--check"]
    usage = "usage: torch_bert.py S|M|T STEPS eager|jit [--check]"
    if len(args) != 3 or args[0] not in CONFIGS or not args[1].isdigit() or int(args[1]) < 1 \
            or args[2] not in ("eager", "jit"):
        sys.exit(usage)
    cfg, steps, mode, check = CONFIGS[args[0]], int(args[1]), args[2], "--check" in sys.argv[1:]
    torch.manual_seed(0)
    torch.set_num_threads(2)
    model = BERT(**cfg)
    if mode == "jit":
        model = torch.jit.script(model)
    params = [p for p in model.parameters()]
    groups = [{"params": [p for p in params if p.dim() >= 2]},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=LR, betas=peer_common.BETAS, eps=peer_common.EPS,
                            weight_decay=peer_common.WD)
    b, s, vocab = cfg["batch"], cfg["seq"], cfg["vocab"]

    def batch():
        clean = torch.randint(0, vocab, (b, s))
        mlm_mask = torch.rand(b, s) < MASK_RATE
        mlm_mask[:, 0] = False
        tokens = clean.masked_fill(mlm_mask, 0)
        pad_mask = torch.ones(b, s, dtype=torch.bool)
        return tokens, pad_mask, clean, mlm_mask, clean[:, 0] % cfg["classes"]

    autocast = os.environ.get("PRECISION", "f32") == "bf16"

    def grads(loss, retain):
        gs = torch.autograd.grad(loss, params, retain_graph=retain, allow_unused=True)
        return [torch.zeros_like(p) if g is None else g for p, g in zip(params, gs)]

    def step(*inputs):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            mlm_loss, cls_loss = model(*inputs)
        # gradnorm: sum of g_i/||g_i||, a zero gradient weighted 0.
        combined = [torch.zeros_like(p) for p in params]
        for loss, retain in ((mlm_loss, True), (cls_loss, False)):
            g = grads(loss, retain)
            norm = torch.sqrt(sum((x.float() ** 2).sum() for x in g))
            w = torch.where(norm > 0, 1.0 / torch.where(norm > 0, norm, torch.ones_like(norm)), torch.zeros_like(norm))
            for c, x in zip(combined, g):
                c.add_(x * w)
        for p, c in zip(params, combined):
            p.grad = c
        torch.nn.utils.clip_grad_norm_(params, peer_common.CLIP)
        opt.step()
        return mlm_loss.detach().float(), cls_loss.detach().float()

    if check:
        inputs = batch()
        losses = [step(*inputs) for _ in range(peer_common.CHECK_STEPS)]
        mlm0, cls0 = (float(x) for x in losses[0])
        ok = abs(mlm0 - math.log(vocab)) < 0.1 and abs(cls0 - math.log(cfg["classes"])) < 0.1 \
            and float(losses[-1][0]) < mlm0 - 0.01 and all(math.isfinite(float(x)) for l in losses for x in l)
        print(f"torch {torch.__version__} {mode}: mlm_loss {mlm0:.4f} cls_loss {cls0:.4f} at step 0 "
              f"(ln(vocab) {math.log(vocab):.4f}, ln(classes) {math.log(cfg['classes']):.4f}); "
              "mlm_loss on one batch: " + " ".join(f"{float(m):.4f}" for m, _ in losses) + ("; ok" if ok else "; FAILED"))
        sys.exit(0 if ok else 1)
    peer_common.bench(step, batch, lambda: None, cfg, steps)


if __name__ == "__main__":
    main()
