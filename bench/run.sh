#!/usr/bin/env bash
# Side by side, in one run: xlc's train step on a backend (default cpu)
# against PyTorch (Debian's python3-torch with OpenBLAS-OpenMP, its best of
# eager and torch.jit.script) for GPT configs S and M, and L (S's model at
# sequence length 1024, batch 4: attention's share grows). Two-thread timings
# vary 20-30% here, so the peers are interleaved ROUNDS times and the median
# ratio is reported, with the fraction of this host's FMA peak (measured by
# bench/peak at the ISA's vector width, of the step's dense FLOPs: xlc
# skips the masked half of causal attention's products, about 7% of config
# S's FLOPs, and is counted as doing them). ISA=avx2 forces both sides to
# AVX2 on an AVX-512 host: xlc's kernels for x86-64-v3, PyTorch's
# ATEN_CPU_CAPABILITY=avx2 and OpenBLAS's Haswell kernels.
#
# PEERS=all adds the best peers from PyPI (bench/peers/setup.sh installs them
# into bench/.venv) as rows of the same rounds: PyTorch 2 eager and
# torch.compile (bench/torch_gpt.py), both also with its fused attention
# (scaled_dot_product_attention: sdpa, sdpa-compile), JAX's jitted train step on XLA's CPU
# backend (bench/jax_gpt.py) and tinygrad's TinyJit train step on its CPU
# device (bench/tinygrad_gpt.py); a second line per config gives each one's
# tokens/s, fraction of peak and xlc's ratio to it, and xlc's ratio to the
# best of all the peers. ISA=avx2 holds them to AVX2 as well: MKL, oneDNN
# and Inductor's generated code for PyTorch 2, --xla_cpu_max_isa=AVX2 for
# XLA, -march=x86-64-v3 for tinygrad's clang. bench/README.md has more.
#
# PRECISION=bf16 trains xlc with -D precision=bf16 and PyTorch under
# torch.autocast("cpu", torch.bfloat16) (bench/torch_gpt.py), master
# weights f32 on both sides; the JAX and tinygrad rows are f32 only, so it
# does not take PEERS=all. PyTorch 1.13 has no bf16 matmul held to AVX2:
# with ISA=avx2 it times xlc's bf16 against xlc's f32 alone.
#
#   bench/run.sh [S|M|L|all]    ROUNDS=10 STEPS_S=10 STEPS_M=3 STEPS_L=3 BACKEND=cpu ISA=host|avx2 PEERS=|all PRECISION=f32|bf16
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
ROUNDS=${ROUNDS:-10}
BACKEND=${BACKEND:-cpu}
PEERS=${PEERS:-}
export PRECISION=${PRECISION:-f32}
case $PRECISION in
  f32 | bf16) ;;
  *) echo "bench/run.sh: PRECISION=$PRECISION: want f32 or bf16" >&2; exit 2 ;;
esac
# Debian's PyTorch 1.13 under ATEN_CPU_CAPABILITY=avx2: oneDNN "could not
# create a primitive descriptor iterator" for the bf16 linear layers.
torch=yes
[ "$PRECISION" = bf16 ] && [ "${ISA:-host}" = avx2 ] && torch=
case $PEERS in
  "") ;;
  all) [ "$PRECISION" = f32 ] || { echo "bench/run.sh: PEERS=all compares f32 only (PRECISION=$PRECISION)" >&2; exit 2; }
    bench/peers/setup.sh ;;
  *) echo "bench/run.sh: PEERS=$PEERS: want all or nothing" >&2; exit 2 ;;
esac
if ! /usr/bin/python3 -c "import torch" 2>/dev/null || ! dpkg -s libopenblas0-openmp >/dev/null 2>&1 || [ ! -x /usr/bin/time ]; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-torch libopenblas0-openmp time
fi
blas=$(dirname "$(dpkg -L libopenblas0-openmp | grep -m1 'libopenblas.*\.so')")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Inductor's on-disk cache does not key on ATEN_CPU_CAPABILITY: kernels
# an ISA=avx2 run cached corrupted a later host-ISA run's heap (PyTorch
# 2.15), so each run keeps its own.
export TORCHINDUCTOR_CACHE_DIR=$tmp/inductor
xlc=$tmp/xlc
go build -o "$xlc" ./cmd/xlc
ISA=${ISA:-host}
zmm=()
tinygrad_dev=CPU  # tinygrad's clang: -march=native
if [ "$ISA" = avx2 ]; then
  export XLC_CPU=x86-64-v3 ATEN_CPU_CAPABILITY=avx2 OPENBLAS_CORETYPE=Haswell
  # PyTorch 2's pip wheel: MKL's and oneDNN's kernels; XLA's generated code.
  export MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 XLA_FLAGS="${XLA_FLAGS:+$XLA_FLAGS }--xla_cpu_max_isa=AVX2"
  tinygrad_dev=CPU:CLANG:x86_64,x86-64-v3
elif grep -qw avx512f /proc/cpuinfo; then
  zmm=(-mavx512f -DZMM)
fi
cc -O2 -mavx2 -mfma "${zmm[@]}" -o "$tmp/peak" bench/peak/peak.c -lpthread
peak=$("$tmp/peak" 2)
echo "CPU: $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1); ISA: $ISA${XLC_CPU:+ (XLC_CPU=$XLC_CPU)}; FMA peak on 2 threads: $peak GFLOP/s"
venv=bench/.venv/bin/python
if [ "$PEERS" = all ]; then
  echo "peers: $("$venv" bench/peers/versions.py); Debian's torch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)')"
fi
# The peers from bench/.venv, each on 2 threads: torch_gpt.py sets PyTorch's;
# XLA's pool is one thread per CPU; tinygrad's CPU device runs its kernels
# in order on one worker thread (0.14: NUM_CPU_THREADS splits a kernel into
# that many parts, which that one thread runs in turn).
torch2() { "$venv" bench/torch_gpt.py "$@"; }
jaxgpt() { JAX_PLATFORMS=cpu "$venv" bench/jax_gpt.py "$@"; }
# clang 19's -march=native on Sapphire Rapids warns of +avx10.1-256 for
# each kernel tinygrad compiles; those lines are dropped.
tinygradgpt() {
  CC=$(command -v clang || command -v clang-19) DEV=$tinygrad_dev NUM_CPU_THREADS=2 "$venv" bench/tinygrad_gpt.py "$@" \
    2> >(grep -v -e 'invalid feature combination: *+avx10' -e 'warnings\? generated\.$' >&2)
}

# fp32 (or PRECISION), AdamW, pre-LN, tied head, tanh GELU (torch_gpt.py is
# the same model).
model="-D tie=true -D gelu_approx=tanh -D precision=$PRECISION"
declare -A defs=(
  [S]="$model -D d=128 -D layers=4 -D heads=4 -D seq=128 -D batch=16"
  [M]="$model -D d=256 -D layers=6 -D heads=8 -D seq=256 -D batch=8"
  [L]="$model -D d=128 -D layers=4 -D heads=4 -D seq=1024 -D batch=4"
)
# Per step (peer_common.train_flops_per_token times the tokens).
declare -A gflop=([S]=11.7 [M]=68.5 [L]=45.9)
declare -A tokens=([S]=2048 [M]=2048 [L]=4096)
declare -A steps=([S]=${STEPS_S:-10} [M]=${STEPS_M:-3} [L]=${STEPS_L:-3})

configs=(S M L)
[ "$which" != all ] && configs=("$which")
for c in "${configs[@]}"; do
  read -ra def <<<"${defs[$c]}"
  # Build once so the timed runs hit the kernel cache.
  "$xlc" bench models/gpt.xl "${def[@]}" --backend "$BACKEND" --steps 1 --warmup 0 | sed 's/:.*//'
  x=() x32=() e=() j=() pe=() pc=() px=() pt=() ps=() psc=()
  tps() { "$xlc" bench models/gpt.xl "$@" --backend "$BACKEND" --steps "${steps[$c]}" --warmup 1 | sed -E 's/.*: ([0-9.]+) tokens\/s.*/\1/'; }
  for _ in $(seq "$ROUNDS"); do
    x+=("$(tps "${def[@]}")")
    # bf16 against xlc's own f32 (the last -D precision wins), same round.
    [ "$PRECISION" = bf16 ] && x32+=("$(tps "${def[@]}" -D precision=f32)")
    if [ -n "$torch" ]; then
      e+=("$(LD_LIBRARY_PATH="$blas" /usr/bin/python3 bench/torch_gpt.py "$c" "${steps[$c]}" eager)")
      j+=("$(LD_LIBRARY_PATH="$blas" /usr/bin/python3 bench/torch_gpt.py "$c" "${steps[$c]}" jit)")
    fi
    if [ "$PEERS" = all ]; then
      pe+=("$(torch2 "$c" "${steps[$c]}" eager)")
      pc+=("$(torch2 "$c" "${steps[$c]}" compile)")
      ps+=("$(torch2 "$c" "${steps[$c]}" sdpa)")
      psc+=("$(torch2 "$c" "${steps[$c]}" sdpa-compile)")
      px+=("$(jaxgpt "$c" "${steps[$c]}")")
      pt+=("$(tinygradgpt "$c" "${steps[$c]}")")
    fi
  done
  /usr/bin/python3 - "$c" "${gflop[$c]}" "$BACKEND" "$peak" "${tokens[$c]}" "${x[*]}" "${e[*]}" "${j[*]}" \
    "${pe[*]}" "${pc[*]}" "${ps[*]}" "${psc[*]}" "${px[*]}" "${pt[*]}" "${x32[*]}" <<'PY'
import os, statistics as st, sys
cfg, gflop, backend, peak, tokens = sys.argv[1], float(sys.argv[2]), sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
x, e, j, *peers, x32 = (st.median([float(v) for v in a.split()]) if a else None for a in sys.argv[6:])
rounds = len(sys.argv[6].split())
pairs = [float(a) / float(b) for a, b in zip(sys.argv[6].split(), sys.argv[-1].split())]
frac = lambda t: t / tokens * gflop / peak
if e is None:
    print(f"config {cfg} ({os.environ['PRECISION']}): xlc {backend} {x:.0f} tok/s ({frac(x):.0%} of peak) | no torch row (median of {rounds} rounds)")
else:
    best = max(e, j)
    print(f"config {cfg} ({os.environ['PRECISION']}): xlc {backend} {x:.0f} tok/s ({frac(x):.0%} of peak) | torch eager {e:.0f}, jit {j:.0f} ({frac(best):.0%}) "
          f"| ratio xlc/torch-best {x / best:.2f} (median of {rounds} interleaved rounds)")
if x32 is not None:
    print(f"config {cfg} xlc bf16/f32: f32 {x32:.0f} tok/s ({frac(x32):.0%} of peak), bf16 {x:.0f} | ratio {st.median(pairs):.2f} "
          f"(median of {rounds} same-round pairs: {' '.join(f'{r:.2f}' for r in pairs)})")
if peers[0] is not None:
    rows = dict(zip(("torch2 eager", "torch2 compile", "torch2 sdpa", "torch2 sdpa-compile", "jax", "tinygrad"), peers))
    top = max({**rows, "torch eager": e, "torch jit": j}.items(), key=lambda kv: kv[1])
    print(f"config {cfg} peers: " + ", ".join(f"{n} {t:.0f} ({frac(t):.0%}, xlc/it {x / t:.2f})" for n, t in rows.items())
          + f" | ratio xlc/best-of-all {x / top[1]:.2f} (best: {top[0]})")
PY
  # Peak memory: the whole process's maximum resident set (xlc: compiler,
  # runtime and the planned buffers; PyTorch: interpreter, libraries and its
  # allocator), one run each of the same steps.
  xm=$( { /usr/bin/time -f %M "$xlc" bench models/gpt.xl "${def[@]}" --backend "$BACKEND" --steps "${steps[$c]}" --warmup 1 >/dev/null; } 2>&1 | tail -1)
  plan() { "$xlc" build models/gpt.xl "${def[@]}" "$@" --fuse -o /dev/null 2>&1 | sed -nE 's/.*@train_step: .*peak ([0-9.]+) MiB.*/\1/p'; }
  p=$(plan)
  [ "$PRECISION" = bf16 ] && p="$p MiB; f32 $(plan -D precision=f32)"
  line="config $c memory: xlc peak RSS $((xm / 1024)) MiB (train step buffers $p MiB)"
  if [ -n "$torch" ]; then
    tm=$( { LD_LIBRARY_PATH="$blas" /usr/bin/time -f %M /usr/bin/python3 bench/torch_gpt.py "$c" "${steps[$c]}" eager >/dev/null; } 2>&1 | tail -1)
    line="$line | torch eager peak RSS $((tm / 1024)) MiB"
  fi
  echo "$line"
done
