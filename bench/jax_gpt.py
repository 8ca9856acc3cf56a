#!/usr/bin/env python3
"""The JAX peer of xlc's CPU backend: torch_gpt.py's GPT (the same model,
initialisation scale, AdamW and clip; see peer_common.py) as one jax.jit'd
train step (forward, backward, global-norm clip and AdamW, written out
here) with the parameters and optimizer state donated, compiled by XLA for
the CPU. Prints tokens/s.

Usage: jax_gpt.py CONFIG STEPS [--check]   (CONFIG S or M)
  --check prints the losses of a few steps on one batch instead.
Run it with bench/.venv's python (bench/peers/setup.sh); bench/run.sh with
PEERS=all does. XLA_FLAGS=--xla_cpu_max_isa=AVX2 keeps XLA's generated
code to AVX2 (bench/run.sh sets it with ISA=avx2).
"""
import math

import peer_common

import jax
import jax.numpy as jnp


def layer_norm(x, w, b):
    mu = x.mean(-1, keepdims=True)
    var = jnp.square(x - mu).mean(-1, keepdims=True)
    return (x - mu) * jax.lax.rsqrt(var + 1e-5) * w + b


def forward(p, tokens, targets, cfg):
    b, s = tokens.shape
    d, nh = cfg["d"], cfg["heads"]
    dh = d // nh
    mask = jnp.tril(jnp.ones((s, s), bool))
    x = p["wte"][tokens] + p["wpe"]

    def lin(name, h):
        return h @ p[name + ".w"] + p[name + ".b"]

    def heads(t):
        return t.reshape(b, s, nh, dh).transpose(0, 2, 1, 3)

    for i in range(cfg["layers"]):
        h = layer_norm(x, p[f"h{i}.ln1.w"], p[f"h{i}.ln1.b"])
        q, k, v = (heads(lin(f"h{i}.{n}", h)) for n in "qkv")
        att = (q @ k.transpose(0, 1, 3, 2)) * (1.0 / math.sqrt(dh))
        att = jax.nn.softmax(jnp.where(mask, att, -1e9), axis=-1)
        y = (att @ v).transpose(0, 2, 1, 3).reshape(b, s, d)
        x = x + lin(f"h{i}.o", y)
        h = layer_norm(x, p[f"h{i}.ln2.w"], p[f"h{i}.ln2.b"])
        x = x + lin(f"h{i}.proj", jax.nn.gelu(lin(f"h{i}.fc", h), approximate=True))
    logits = layer_norm(x, p["ln_f.w"], p["ln_f.b"]) @ p["wte"].T  # tied head
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(logp, targets[..., None], axis=-1).mean()


def make_step(cfg):
    lr, (b1, b2), eps, wd, clip = peer_common.LR, peer_common.BETAS, peer_common.EPS, peer_common.WD, peer_common.CLIP

    def step(state, tokens, targets):
        p, m, v, t = state
        loss, g = jax.value_and_grad(forward)(p, tokens, targets, cfg)
        # torch.nn.utils.clip_grad_norm_: scale by clip / (norm + 1e-6) when below 1.
        norm = jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree_util.tree_leaves(g)))
        g = jax.tree_util.tree_map(lambda x: x * jnp.minimum(1.0, clip / (norm + 1e-6)), g)
        # torch.optim.AdamW: decoupled decay, then the bias-corrected Adam step.
        t = t + 1
        m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        c1, c2 = 1 - b1 ** t, jnp.sqrt(1 - b2 ** t)
        p = jax.tree_util.tree_map(
            lambda p, m, v: p * (1 - lr * wd) - (lr / c1) * m / (jnp.sqrt(v) / c2 + eps), p, m, v)
        return (p, m, v, t), loss

    return jax.jit(step, donate_argnums=0)


def main():
    cfg, steps, _, check = peer_common.parse("jax_gpt.py S|M|L STEPS [--check]")
    p = {k: jnp.asarray(a) for k, a in peer_common.numpy_init(cfg).items()}
    zeros = jax.tree_util.tree_map(jnp.zeros_like, p)
    box = {"state": (p, zeros, jax.tree_util.tree_map(jnp.zeros_like, p), jnp.zeros((), jnp.float32)),
           "loss": None}
    jstep = make_step(cfg)
    batch = peer_common.numpy_batches(cfg)

    def step(tokens, targets):
        box["state"], box["loss"] = jstep(box["state"], tokens, targets)
        return box["loss"]

    def sync():
        jax.block_until_ready((box["state"], box["loss"]))

    if check:
        peer_common.check(step, batch, sync, float, cfg, f"jax {jax.__version__} ({jax.devices()[0].platform})")
    peer_common.bench(step, batch, sync, cfg, steps)


if __name__ == "__main__":
    main()
