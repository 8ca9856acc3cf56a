#!/usr/bin/env bash
# Side by side, in one run: xlc's train step on a backend (default cpu)
# against PyTorch (Debian's python3-torch with OpenBLAS-OpenMP, its best of
# eager and torch.jit.script) for GPT configs S and M. Two-thread timings
# vary 20-30% here, so the peers are interleaved ROUNDS times and the median
# ratio is reported, with the fraction of this host's FMA peak (measured by
# bench/peak at the ISA's vector width, of the step's dense FLOPs: xlc
# skips the masked half of causal attention's products, about 7% of config
# S's FLOPs, and is counted as doing them). ISA=avx2 forces both sides to
# AVX2 on an AVX-512 host: xlc's kernels for x86-64-v3, PyTorch's
# ATEN_CPU_CAPABILITY=avx2 and OpenBLAS's Haswell kernels.
#
#   bench/run.sh [S|M|all]      ROUNDS=10 STEPS_S=10 STEPS_M=3 BACKEND=cpu ISA=host|avx2
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
ROUNDS=${ROUNDS:-10}
BACKEND=${BACKEND:-cpu}
if ! /usr/bin/python3 -c "import torch" 2>/dev/null || ! dpkg -s libopenblas0-openmp >/dev/null 2>&1 || [ ! -x /usr/bin/time ]; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-torch libopenblas0-openmp time
fi
blas=$(dirname "$(dpkg -L libopenblas0-openmp | grep -m1 'libopenblas.*\.so')")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
xlc=$tmp/xlc
go build -o "$xlc" ./cmd/xlc
ISA=${ISA:-host}
zmm=
if [ "$ISA" = avx2 ]; then
  export XLC_CPU=x86-64-v3 ATEN_CPU_CAPABILITY=avx2 OPENBLAS_CORETYPE=Haswell
elif grep -qw avx512f /proc/cpuinfo; then
  zmm="-mavx512f -DZMM"
fi
cc -O2 -mavx2 -mfma $zmm -o "$tmp/peak" bench/peak/peak.c -lpthread
peak=$("$tmp/peak" 2)
echo "CPU: $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1); ISA: $ISA${XLC_CPU:+ (XLC_CPU=$XLC_CPU)}; FMA peak on 2 threads: $peak GFLOP/s"

# fp32, AdamW, pre-LN, tied head, tanh GELU (torch_gpt.py is the same model).
model="-D tie=true -D gelu_approx=tanh"
declare -A defs=(
  [S]="$model -D d=128 -D layers=4 -D heads=4 -D seq=128 -D batch=16"
  [M]="$model -D d=256 -D layers=6 -D heads=8 -D seq=256 -D batch=8"
)
declare -A gflop=([S]=11.7 [M]=68.5)  # per step (DESIGN.md), tokens: 2048 per step in both
declare -A steps=([S]=${STEPS_S:-10} [M]=${STEPS_M:-3})

configs=(S M)
[ "$which" != all ] && configs=("$which")
for c in "${configs[@]}"; do
  # Build once so the timed runs hit the kernel cache.
  "$xlc" bench models/gpt.xl ${defs[$c]} --backend "$BACKEND" --steps 1 --warmup 0 | sed 's/:.*//'
  x=() e=() j=()
  for r in $(seq "$ROUNDS"); do
    x+=("$("$xlc" bench models/gpt.xl ${defs[$c]} --backend "$BACKEND" --steps "${steps[$c]}" --warmup 1 | sed -E 's/.*: ([0-9.]+) tokens\/s.*/\1/')")
    e+=("$(LD_LIBRARY_PATH="$blas" /usr/bin/python3 bench/torch_gpt.py "$c" "${steps[$c]}" eager)")
    j+=("$(LD_LIBRARY_PATH="$blas" /usr/bin/python3 bench/torch_gpt.py "$c" "${steps[$c]}" jit)")
  done
  /usr/bin/python3 - "$c" "${gflop[$c]}" "${x[*]}" "${e[*]}" "${j[*]}" "$BACKEND" "$peak" <<'PY'
import statistics as st, sys
cfg, gflop = sys.argv[1], float(sys.argv[2])
xs, es, js = ([float(v) for v in a.split()] for a in sys.argv[3:6])
backend, peak = sys.argv[6], float(sys.argv[7])
x, e, j = st.median(xs), st.median(es), st.median(js)
best = max(e, j)
tokens = 2048
frac = lambda t: t / tokens * gflop / peak
print(f"config {cfg}: xlc {backend} {x:.0f} tok/s ({frac(x):.0%} of peak) | torch eager {e:.0f}, jit {j:.0f} ({frac(best):.0%}) "
      f"| ratio xlc/torch-best {x / best:.2f} (median of {len(xs)} interleaved rounds)")
PY
  # Peak memory: the whole process's maximum resident set (xlc: compiler,
  # runtime and the planned buffers; PyTorch: interpreter, libraries and its
  # allocator), one run each of the same steps.
  xm=$( { /usr/bin/time -f %M "$xlc" bench models/gpt.xl ${defs[$c]} --backend "$BACKEND" --steps "${steps[$c]}" --warmup 1 >/dev/null; } 2>&1 | tail -1)
  tm=$( { LD_LIBRARY_PATH="$blas" /usr/bin/time -f %M /usr/bin/python3 bench/torch_gpt.py "$c" "${steps[$c]}" eager >/dev/null; } 2>&1 | tail -1)
  plan=$("$xlc" build models/gpt.xl ${defs[$c]} --fuse -o /dev/null 2>&1 | sed -nE 's/.*@train_step: .*peak ([0-9.]+ MiB).*/\1/p')
  echo "config $c memory: xlc peak RSS $((xm / 1024)) MiB (train step buffers $plan) | torch eager peak RSS $((tm / 1024)) MiB"
done
