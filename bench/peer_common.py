"""What the Python peers of bench/run.sh share: the configs, the command
line, the timing loop and the loss check. Standard library only, so that
Debian's python3 (torch_gpt.py's eager and jit rows) can import it too.

Every peer trains the same fp32 GPT as models/gpt.xl with -D tie=true
-D gelu_approx=tanh: pre-LN, biases everywhere, tied embedding and head,
tanh GELU, causal attention masked with -1e9, AdamW (lr 3e-4, betas 0.9 and
0.999, eps 1e-8, weight decay 0.01 on every parameter), global-norm clip 1,
on random byte windows (a fresh batch each step). Initialisation is
PyTorch's: wte and wpe normal(0.02), each Linear's weight and bias
uniform(+-1/sqrt(fan_in)), LayerNorm 1 and 0 (eps 1e-5).
"""
import math
import statistics
import sys
import time

CONFIGS = {
    "S": dict(d=128, layers=4, heads=4, seq=128, batch=16, vocab=256),
    "M": dict(d=256, layers=6, heads=8, seq=256, batch=8, vocab=256),
    # T is tiny, for the quick run of `xlc experiment speed` (a smoke test).
    # L is long context for fused attention (issue: seq 1024, GPT-2's context).
    "L": dict(d=128, layers=4, heads=4, seq=1024, batch=4, vocab=256),
    "T": dict(d=32, layers=1, heads=2, seq=32, batch=4, vocab=256),
    # G has GPT-2 small's shape with the byte vocabulary: the GPU peer's
    # largest config (bench/torch_gpt_cuda.py, scripts/gpu-check.sh).
    "G": dict(d=768, layers=12, heads=12, seq=1024, batch=8, vocab=256),
}
LR, BETAS, EPS, WD, CLIP = 3e-4, (0.9, 0.999), 1e-8, 0.01, 1.0
WARMUP = 3  # untimed steps first (JIT capture and compilation happen here)
CHECK_STEPS = 8


def train_flops_per_token(cfg):
    """The dense FLOPs of one training step per token: 6 per weight of the
    matrix products (12·d² a layer and the tied head's vocab·d: forward 2,
    backward 4) and 12·seq·d a layer for attention's two products over the
    whole seq×seq square (forward 4·seq·d, backward twice that), the masked
    half included. It gives bench/run.sh's 11.7 (S) and 68.5 (M) GFLOP per
    2048-token step."""
    d, layers, seq, vocab = cfg["d"], cfg["layers"], cfg["seq"], cfg["vocab"]
    return 6 * (12 * layers * d * d + vocab * d) + 12 * layers * seq * d


def parse(usage, modes=None):
    """Reads CONFIG STEPS [MODE] [--check] from sys.argv; returns the config
    dict, the step count, the mode (None without modes) and the flag."""
    args = [a for a in sys.argv[1:] if a != "--check"]
    want = 3 if modes else 2
    if len(args) != want or args[0] not in CONFIGS or not args[1].isdigit() or int(args[1]) < 1 \
            or (modes and args[2] not in modes):
        sys.exit("usage: " + usage)
    return CONFIGS[args[0]], int(args[1]), args[2] if modes else None, "--check" in sys.argv[1:]


def numpy_init(cfg, seed=0):
    """The parameters as numpy float32 arrays, PyTorch's initialisation
    (see the module doc), Linear weights stored [in, out]. Names: wte, wpe,
    ln_f.{w,b} and, per layer i, h{i}.{ln1,ln2}.{w,b} and
    h{i}.{q,k,v,o,fc,proj}.{w,b}."""
    import numpy as np

    rng = np.random.default_rng(seed)
    d, v, s = cfg["d"], cfg["vocab"], cfg["seq"]
    f32 = np.float32
    p = {"wte": (rng.standard_normal((v, d)) * 0.02).astype(f32),
         "wpe": (rng.standard_normal((s, d)) * 0.02).astype(f32),
         "ln_f.w": np.ones(d, f32), "ln_f.b": np.zeros(d, f32)}

    def linear(name, fan_in, fan_out):
        bound = 1 / math.sqrt(fan_in)
        p[name + ".w"] = rng.uniform(-bound, bound, (fan_in, fan_out)).astype(f32)
        p[name + ".b"] = rng.uniform(-bound, bound, fan_out).astype(f32)

    for i in range(cfg["layers"]):
        for ln in ("ln1", "ln2"):
            p[f"h{i}.{ln}.w"], p[f"h{i}.{ln}.b"] = np.ones(d, f32), np.zeros(d, f32)
        for n in "qkvo":
            linear(f"h{i}.{n}", d, d)
        linear(f"h{i}.fc", d, 4 * d)
        linear(f"h{i}.proj", 4 * d, d)
    return p


def numpy_batches(cfg, seed=0):
    """A function returning a fresh batch each call: (tokens, targets), int32
    numpy arrays of random bytes, [batch, seq] each."""
    import numpy as np

    rng = np.random.default_rng(seed)
    shape = (cfg["batch"], cfg["seq"])

    def batch():
        return (rng.integers(0, cfg["vocab"], shape, dtype=np.int32),
                rng.integers(0, cfg["vocab"], shape, dtype=np.int32))
    return batch


def bench(step, batch, sync, cfg, steps):
    """Runs WARMUP untimed steps, then times each of steps steps (batch
    generation included, as in xlc's loop) and prints tokens per step over
    the median step time: one number, the line bench/run.sh reads."""
    for _ in range(WARMUP):
        step(*batch())
        sync()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step(*batch())
        sync()
        times.append(time.perf_counter() - t0)
    print(f"{cfg['batch'] * cfg['seq'] / statistics.median(times):.1f}")


def check(step, batch, sync, loss_value, cfg, name):
    """The --check run: CHECK_STEPS steps on one fixed batch. The first loss
    must be near ln(vocab) (about 0.03 above it with this initialisation)
    and the last clearly below the first; exits 1 otherwise."""
    tokens, targets = batch()
    losses = []
    for _ in range(CHECK_STEPS):
        loss = step(tokens, targets)
        sync()
        losses.append(loss_value(loss))
    want = math.log(cfg["vocab"])
    ok = abs(losses[0] - want) < 0.1 and losses[-1] < losses[0] - 0.01 and all(map(math.isfinite, losses))
    print(f"{name}: ln(vocab) {want:.4f}; losses on one batch: " + " ".join(f"{v:.4f}" for v in losses)
          + ("; ok" if ok else "; FAILED"))
    sys.exit(0 if ok else 1)
