#!/usr/bin/env python3
"""The PyTorch peer of xlc's CUDA backend: bench/torch_gpt.py's GPT (its
Block and GPT classes, imported: explicit attention masked with -1e9,
pre-LN, tied head, tanh GELU, biases everywhere, AdamW, global-norm clip
1; peer_common.py has the details all peers share) trained on a device,
for configs S, M and G (GPT-2 small's shape, d=768, 12 layers, 12 heads,
seq 1024, batch 8). Prints tokens/s of the given mode, as torch_gpt.py.

Usage: torch_gpt_cuda.py CONFIG STEPS MODE [--precision f32|bf16] [--device cuda|cpu] [--check]
       torch_gpt_cuda.py --device cpu --tiny
  CONFIG S, M or G (T: tiny); MODE one of MODES:
    eager         the model as written;
    compile       torch.compile of each transformer block (regional
                  compilation: the block's code is compiled once and reused
                  by every layer, which bounds the compile time; set
                  TORCH_COMPILE_SCOPE=model to compile the whole model);
    sdpa          eager, attention by F.scaled_dot_product_attention
                  (is_causal), pinned on CUDA to the flash kernel in bf16 and
                  to the memory-efficient one in f32 (flash takes fp16 and
                  bf16 only);
    sdpa-compile  both.
  --precision bf16 runs the forward under torch.autocast(bf16) (bf16
  matmuls, f32 master weights and optimizer), as xlc's -D precision=bf16.
  --check prints the losses of a few steps on one batch instead.
  --tiny (with --device cpu) is the smoke test: config T, every mode and
  precision this PyTorch has (Debian's 1.13 has neither torch.compile nor
  scaled_dot_product_attention: those are skipped with a note), --check
  and a few timed steps each; exits 1 if any that ran failed.

Float32 is true f32: TF32 is off for matmuls and cuDNN
(torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 =
False), in bf16 runs too. On CUDA the optimizer is AdamW with fused=True
(PyTorch's fastest AdamW there; the same formula) after
clip_grad_norm_; the CPU keeps torch_gpt.py's defaults. Each step is timed
to a torch.cuda.synchronize() after it, its batch (random bytes drawn on
the host, then copied) included, as xlc's loop reads its batch on the host.
bench/gpu_bench.py drives the modes in rounds interleaved with xlc
(scripts/gpu-check.sh).
"""
import logging
import math
import os
import statistics
import sys
import time

import peer_common
import torch_gpt

import torch
import torch.nn.functional as F

MODES = ("eager", "compile", "sdpa", "sdpa-compile")


class SdpaBlock(torch_gpt.Block):
    """torch_gpt.Block with attention by F.scaled_dot_product_attention
    (causal; the same function as the -1e9 mask, whose masked weights are
    exactly 0 in f32). A Block becomes one by assigning its __class__, so
    both have the same parameters and initialisation."""

    def forward(self, x, mask):
        b, s, d = x.shape
        h = self.ln1(x)
        q = self.q(h).view(b, s, self.heads, d // self.heads).transpose(1, 2)
        k = self.k(h).view(b, s, self.heads, d // self.heads).transpose(1, 2)
        v = self.v(h).view(b, s, self.heads, d // self.heads).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, s, d)
        x = x + self.o(y)
        return x + self.proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


def unavailable(mode, precision, device):
    """Why this PyTorch cannot run the mode (a phrase), or None."""
    if "compile" in mode and not hasattr(torch, "compile"):
        return f"PyTorch {torch.__version__} has no torch.compile"
    if mode.startswith("sdpa") and not hasattr(F, "scaled_dot_product_attention"):
        return f"PyTorch {torch.__version__} has no F.scaled_dot_product_attention"
    if device == "cuda" and not torch.cuda.is_available():
        return "torch.cuda.is_available() is False"
    return None


def sdpa_backend(precision, device):
    """The SDPA kernel a sdpa mode is pinned to: a function returning a
    fresh context manager for each forward (sdpa_kernel's is single-use),
    and the kernel's name for the rows ("default": the dispatcher's choice,
    on the CPU)."""
    import contextlib
    if device != "cuda":
        return contextlib.nullcontext, "default"
    from torch.nn.attention import SDPBackend, sdpa_kernel
    backend = SDPBackend.FLASH_ATTENTION if precision == "bf16" else SDPBackend.EFFICIENT_ATTENTION
    return lambda: sdpa_kernel([backend]), "flash" if precision == "bf16" else "mem-efficient"


class Trainer:
    """One mode's model, optimizer and step on a device. step(tokens,
    targets) runs a train step and returns the loss (a tensor); batch()
    draws a fresh batch; sync() waits for the device. Every Trainer starts
    from torch.manual_seed(0), so all modes have the same initial weights
    (torch_gpt.py's)."""

    def __init__(self, cfg, mode, precision="f32", device="cuda"):
        if mode not in MODES or precision not in ("f32", "bf16"):
            raise ValueError(f"mode {mode!r} precision {precision!r}")
        self.cfg, self.mode, self.precision, self.device = cfg, mode, precision, device
        if device == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        torch.manual_seed(0)
        model = torch_gpt.GPT(**cfg)
        if mode.startswith("sdpa"):
            for blk in model.blocks:
                blk.__class__ = SdpaBlock
        model.to(device)
        self.params = list(model.parameters())
        if "compile" in mode:
            # Quiet Dynamo's warnings; errors still print.
            torch._logging.set_logs(dynamo=logging.ERROR)
            if os.environ.get("TORCH_COMPILE_SCOPE", "blocks") == "model":
                model = torch.compile(model)
            else:
                for blk in model.blocks:
                    blk.compile()
        self.model = model
        kw = dict(lr=peer_common.LR, betas=peer_common.BETAS, eps=peer_common.EPS, weight_decay=peer_common.WD)
        if device == "cuda":
            kw["fused"] = True
        self.opt = torch.optim.AdamW(self.params, **kw)
        self.sdpa, self.sdpa_name = sdpa_backend(precision, device) if mode.startswith("sdpa") else (None, None)
        self.gen = torch.Generator().manual_seed(1)

    def name(self):
        """The row's name: torch MODE, with the SDPA kernel for sdpa modes."""
        return f"torch {self.mode}" + (f" ({self.sdpa_name})" if self.sdpa_name else "")

    def batch(self):
        b, s, v = self.cfg["batch"], self.cfg["seq"], self.cfg["vocab"]
        t = torch.randint(0, v, (2, b, s), generator=self.gen)
        t = t.to(self.device, non_blocking=True)
        return t[0], t[1]

    def sync(self):
        if self.device == "cuda":
            torch.cuda.synchronize()

    def step(self, tokens, targets):
        with torch.autocast(self.device, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            if self.sdpa is not None:
                with self.sdpa():
                    loss = self.model(tokens, targets)
            else:
                loss = self.model(tokens, targets)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, peer_common.CLIP)
        self.opt.step()
        return loss.detach()

    def warm(self, steps=peer_common.WARMUP):
        """Runs steps untimed steps (the compilation happens in the first)
        and returns their seconds."""
        t0 = time.perf_counter()
        for _ in range(steps):
            self.step(*self.batch())
        self.sync()
        return time.perf_counter() - t0

    def times(self, steps):
        """Times steps steps, each with its batch and to a sync after it;
        returns the list of seconds."""
        out = []
        for _ in range(steps):
            t0 = time.perf_counter()
            self.step(*self.batch())
            self.sync()
            out.append(time.perf_counter() - t0)
        return out

    def tokens_per_s(self, times):
        return self.cfg["batch"] * self.cfg["seq"] / statistics.median(times)


def tiny(steps=3):
    """--device cpu --tiny: config T in every mode and precision; returns the
    exit status (1 if a mode that ran failed its loss check or raised)."""
    cfg = peer_common.CONFIGS["T"]
    torch.set_num_threads(2)
    failed = False
    print(f"torch {torch.__version__} on the CPU, config T {cfg}")
    for precision in ("f32", "bf16"):
        for mode in MODES:
            why = unavailable(mode, precision, "cpu")
            label = f"  {mode:13s} {precision}"
            if why:
                print(f"{label}: skipped: {why}")
                continue
            try:
                tr = Trainer(cfg, mode, precision, "cpu")
                tokens, targets = tr.batch()
                t0 = time.perf_counter()
                losses = [float(tr.step(tokens, targets))]  # compiles, in the compile modes
                first = time.perf_counter() - t0
                losses += [float(tr.step(tokens, targets)) for _ in range(peer_common.CHECK_STEPS - 1)]
                want = math.log(cfg["vocab"])
                ok = abs(losses[0] - want) < 0.1 and losses[-1] < losses[0] - 0.01 and all(map(math.isfinite, losses))
                tr.warm()
                tps = tr.tokens_per_s(tr.times(steps))
                print(f"{label}: losses " + " ".join(f"{v:.4f}" for v in losses)
                      + f"; {'ok' if ok else 'FAILED'}; first step {first:.2f} s, {tps:.0f} tokens/s")
                failed |= not ok
            except Exception as e:  # a mode that breaks is reported, the others still run
                print(f"{label}: FAILED: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
                failed = True
    return 1 if failed else 0


def main():
    argv = sys.argv[1:]

    def option(name, choices, default):
        if name not in argv:
            return default
        i = argv.index(name)
        if i + 1 >= len(argv) or argv[i + 1] not in choices:
            sys.exit(f"torch_gpt_cuda.py: {name} wants one of {', '.join(choices)}")
        value = argv[i + 1]
        del argv[i:i + 2]
        return value

    precision = option("--precision", ("f32", "bf16"), "f32")
    device = option("--device", ("cuda", "cpu"), "cuda")
    if "--tiny" in argv:
        if device != "cpu":
            sys.exit("torch_gpt_cuda.py: --tiny is the CPU smoke test: add --device cpu")
        sys.exit(tiny())
    sys.argv[1:] = argv
    cfg, steps, mode, check = peer_common.parse(
        "torch_gpt_cuda.py S|M|G STEPS eager|compile|sdpa|sdpa-compile [--precision f32|bf16] [--device cuda|cpu] [--check]",
        MODES)
    why = unavailable(mode, precision, device)
    if why:
        sys.exit(f"torch_gpt_cuda.py: mode {mode} on {device}: {why}")
    if device == "cpu":
        torch.set_num_threads(2)
    tr = Trainer(cfg, mode, precision, device)
    if check:
        peer_common.check(tr.step, tr.batch, tr.sync, float, cfg, f"torch {torch.__version__} {tr.name()} {precision}")
    peer_common.bench(tr.step, tr.batch, tr.sync, cfg, steps)


if __name__ == "__main__":
    main()
