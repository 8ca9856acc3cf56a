#!/usr/bin/env bash
# Prepares, on a build machine with Go and LLVM 19, everything the GPU check
# (scripts/gpu-check.sh) needs on a GPU machine that has neither, in one
# git-ignored folder (default gpu/; an argument names another):
#
#   xlc                    the cuda-tagged xlc (go build -tags cuda, stripped)
#   cuda.test              the GPU tests (go test -c -tags cuda ./runtime/cuda)
#   cuda-testdata/         runtime/cuda/testdata, where there is one
#   cuda-ptx/              the PTX (sm_90) of every function cuda.test loads,
#                          recorded by TestRecordPTX: there is no LLVM there
#   bundles/S-f32.xlc      config S, M (bench/run.sh's) and G (GPT-2 small's
#   bundles/M-f32.xlc      shape: d=768, 12 layers, 12 heads, seq 1024,
#   bundles/G-f32-V.xlc    batch 8), f32, for --target cuda --gpu sm_90; G once
#                          per matmul tile variant V of VARIANTS below
#                          (codegen reads XLC_GPU_DOT when it builds;
#                          "default" leaves it unset; "strips" is the
#                          default tiles with XLC_GPU_ATTENTION=strips:
#                          attention by whole rows, not flash)
#   bundles/S-f32-check.xlc  S with -D steps=20, for the loss comparison
#   bundles/S-bf16-check.xlc S in bf16 likewise (tensor cores), where bf16 builds
#   bundles/C-bf16.xlc     S, M and G with -D precision=bf16, where that builds
#                          (a failure is a note, not an error)
#   bundles/G-bf16-V.xlc   G in bf16 once per tensor-core tile variant V of
#                          MMA_VARIANTS below (codegen reads XLC_GPU_MMA;
#                          "strips" as for f32)
#   cpu-S.metrics.jsonl    xlc train on the cpu backend, S with -D steps=20,
#                          20 steps: the losses the GPU run must match
#   cpu-S-bf16.metrics.jsonl  the same in bf16, with S-bf16-check.xlc
#   cpu-G-f32.metrics.jsonl   2 steps of G on the cpu backend, f32 and bf16:
#   cpu-G-bf16.metrics.jsonl  the losses G-f32-default.xlc and G-bf16.xlc
#                          must match
#   peer/                  bench's PyTorch CUDA peer and the check's Python
#                          (torch_gpt_cuda.py, gpu_bench.py and what they import)
#   gpu-check.sh           the check itself
#   prepared.env           what was prepared (commit, date, variants, configs)
#   MANIFEST               every other file's sha256 and size, and the total
#
# It stops at the first missing piece with one line saying what: Go, LLVM
# 19, the CUDA SDK (scripts/cuda-sdk.sh's XLC_PTXAS, XLC_LIBDEVICE,
# XLC_CUDA_CGO and XLC_CUDA_LIB, taken from the environment where set), a
# build, a bundle or the CPU run (the one line ends with the log that has
# the rest). The folder is written elsewhere and
# moved into place at the end, so it is either complete or as it was; a
# folder that is not a prepared one is never replaced. It is refused (one
# line) over 64 MiB, what a device run carries. It prints every file it
# carries and the total.
#
#   scripts/gpu-prepare.sh [DIR]        then, on the GPU machine: bash DIR/gpu-check.sh
set -euo pipefail

# The variants of the G bundles, swept by gpu-check.sh: f32 tiles
# (XLC_GPU_DOT) and, besides the default, tensor-core tiles (XLC_GPU_MMA)
# of the bf16 bundle; "strips" in either is attention by strips of whole
# rows (XLC_GPU_ATTENTION=strips) instead of flash attention.
VARIANTS="default 128x128x8 strips"
MMA_VARIANTS="128x128 strips"
GPU=sm_90
CHECK_STEPS=20
G_CHECK_STEPS=2
MAX_BYTES=$((64 * 1024 * 1024))

cd "$(dirname "$0")/.."
dir=${1:-gpu}
unset XLC_GPU_DOT XLC_GPU_MMA XLC_GPU_ATTENTION  # only the variants below set them
fail() {
  echo "gpu-prepare.sh: $*" >&2
  exit 1
}
if [ -e "$dir" ] && [ ! -f "$dir/prepared.env" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
  fail "$dir exists and is not a prepared folder (no prepared.env): remove it or name another"
fi
command -v go >/dev/null || fail "go not found (Go 1.26 builds xlc)"
for t in opt-19 llc-19; do
  command -v "$t" >/dev/null || fail "$t not found (apt-get install llvm-19): the bundles and the CPU reference need LLVM 19"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/gpu-prepare.XXXXXX")
keep_work=
trap '[ -n "$keep_work" ] || rm -rf "$work"' EXIT
stage=$work/stage
mkdir -p "$stage/bundles" "$stage/peer"
log=$work/log
# telling FILE: the line of a tool's output that says what went wrong:
# the first that reads like an error, else the last.
telling() {
  grep -v '^[[:space:]]*$' "$1" | grep -v '^FAIL' | grep -i -m1 -E 'error|cannot|not found|not defined|unknown|undefined|no such|refused|failed|panic|invalid' ||
    grep -v '^[[:space:]]*$' "$1" | tail -1
}
# run WHAT CMD...: CMD's output to the log; on failure one line naming
# WHAT, with the telling line of its output, and the log kept.
run() {
  local what=$1
  shift
  echo "--- $what: $*" >>"$log"
  if ! "$@" >"$work/last" 2>&1; then
    cat "$work/last" >>"$log"
    keep_work=1
    fail "$what failed: $(telling "$work/last") (log: $log)"
  fi
  cat "$work/last" >>"$log"
}
took() { awk -v a="$EPOCHREALTIME" -v b="$1" 'BEGIN { printf "%.1f s", a - b }'; }

# The CUDA SDK: ptxas and libdevice for the bundles' PTX; cuda.h and the
# stub libcuda.so for the cuda build's cgo (XLC_CUDA_CGO, or CGO_LDFLAGS
# with CGO_CPPFLAGS or CGO_CFLAGS from the environment); libcuda.so.1
# (XLC_CUDA_LIB), with which the cuda-tagged xlc starts here.
if [ -z "${XLC_PTXAS:-}" ] || [ -z "${XLC_LIBDEVICE:-}" ] || { [ -z "${XLC_CUDA_CGO:-}" ] && [ -z "${CGO_LDFLAGS:-}" ]; }; then
  sdk=$(scripts/cuda-sdk.sh 2>"$work/cuda-sdk.log") ||
    { keep_work=1; fail "scripts/cuda-sdk.sh failed: $(tail -1 "$work/cuda-sdk.log") (log: $work/cuda-sdk.log)"; }
  eval "$sdk"
fi
if [ -z "${XLC_PTXAS:-}" ] || [ -z "${XLC_LIBDEVICE:-}" ]; then
  fail "no XLC_PTXAS/XLC_LIBDEVICE (scripts/cuda-sdk.sh prints them)"
fi
export XLC_PTXAS XLC_LIBDEVICE
cgo=()
if [ -n "${XLC_CUDA_CGO:-}" ]; then
  read -ra cgo <<<"$XLC_CUDA_CGO"
elif [ -z "${CGO_LDFLAGS:-}" ] || { [ -z "${CGO_CPPFLAGS:-}" ] && [ -z "${CGO_CFLAGS:-}" ]; }; then
  fail "no cgo flags for the cuda build: no XLC_CUDA_CGO (scripts/cuda-sdk.sh prints it), nor CGO_LDFLAGS with CGO_CPPFLAGS or CGO_CFLAGS"
fi
# The cuda-tagged xlc links libcuda: here it finds the driver library in
# XLC_CUDA_LIB (it then sees no GPU), or where cgo's -L found one.
libdirs=${XLC_CUDA_LIB:-$(tr ' ' '\n' <<<"${CGO_LDFLAGS:-}" | sed -n 's/^-L//p' | paste -sd:)}

t0=$EPOCHREALTIME
run "go build -tags cuda ./cmd/xlc" env "${cgo[@]}" go build -tags cuda -ldflags='-s -w' -o "$stage/xlc" ./cmd/xlc
run "go test -c -tags cuda ./runtime/cuda" env "${cgo[@]}" go test -c -tags cuda -ldflags='-s -w' -o "$stage/cuda.test" ./runtime/cuda
[ -x "$stage/cuda.test" ] || fail "go test -c -tags cuda ./runtime/cuda wrote no test binary (does the package have tests?)"
if [ -d runtime/cuda/testdata ]; then
  cp -r runtime/cuda/testdata "$stage/cuda-testdata"
fi
run "TestRecordPTX (the GPU tests' PTX)" env XLC_CUDA_PTX="$stage/cuda-ptx" XLC_CUDA_PTX_GPU=sm_90 \
  go test -count=1 -run '^TestRecordPTX$' ./runtime/cuda
[ -n "$(ls -A "$stage/cuda-ptx" 2>/dev/null)" ] || fail "TestRecordPTX recorded no PTX into cuda-ptx/"
echo "built xlc and cuda.test, recorded their PTX, in $(took "$t0")"
xlc() { LD_LIBRARY_PATH="$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$stage/xlc" "$@"; }
run "the cuda-tagged xlc (xlc help)" xlc help

# S and M as bench/run.sh defines them; G: GPT-2 small's shape.
model=(-D tie=true -D gelu_approx=tanh)
declare -A defs=(
  [S]="-D d=128 -D layers=4 -D heads=4 -D seq=128 -D batch=16"
  [M]="-D d=256 -D layers=6 -D heads=8 -D seq=256 -D batch=8"
  [G]="-D d=768 -D layers=12 -D heads=12 -D seq=1024 -D batch=8"
)
# bundle NAME CONFIG PRECISION [-D ...]: bundles/NAME.xlc for the GPU.
bundle() {
  local name=$1 cfg=$2 prec=$3 def
  shift 3
  read -ra def <<<"${defs[$cfg]}"
  run "xlc build $name" xlc build models/gpt.xl "${model[@]}" "${def[@]}" -D "precision=$prec" "$@" \
    --target cuda --gpu "$GPU" -o "$stage/bundles/$name.xlc"
}
t0=$EPOCHREALTIME
bundle S-f32 S f32
bundle S-f32-check S f32 -D "steps=$CHECK_STEPS"
bundle M-f32 M f32
for v in $VARIANTS; do
  case $v in
  default) bundle "G-f32-$v" G f32 ;;
  strips) XLC_GPU_ATTENTION=strips bundle "G-f32-$v" G f32 ;;
  *) XLC_GPU_DOT=$v bundle "G-f32-$v" G f32 ;;
  esac
done
echo "built the f32 bundles in $(took "$t0")"
dups=$(cd "$stage/bundles" && sha256sum G-f32-*.xlc | sort | uniq -w64 -D | cut -c67- | paste -sd' ')
if [ -n "$dups" ]; then
  echo "note: tile variants with the same bundle: $dups (does codegen read XLC_GPU_DOT?)"
fi

# bf16: the mixed-precision bundles where -D precision=bf16 builds for the
# GPU; one that does not is left out, with a note.
t0=$EPOCHREALTIME
bf16=()
for c in S M G; do
  read -ra def <<<"${defs[$c]}"
  if xlc build models/gpt.xl "${model[@]}" "${def[@]}" -D precision=bf16 --target cuda --gpu "$GPU" \
    -o "$stage/bundles/$c-bf16.xlc" >"$work/bf16-$c.log" 2>&1; then
    bf16+=("$c")
  else
    echo "note: no $c-bf16 bundle: $(telling "$work/bf16-$c.log")"
  fi
done
mma=()
if [[ " ${bf16[*]} " == *" G "* ]]; then
  read -ra def <<<"${defs[G]}"
  for v in $MMA_VARIANTS; do
    knob=XLC_GPU_MMA
    [ "$v" != strips ] || knob=XLC_GPU_ATTENTION
    if (export "$knob=$v" && xlc build models/gpt.xl "${model[@]}" "${def[@]}" -D precision=bf16 --target cuda --gpu "$GPU" \
      -o "$stage/bundles/G-bf16-$v.xlc" >"$work/bf16-G-$v.log" 2>&1); then
      mma+=("$v")
    else
      echo "note: no G-bf16-$v bundle: $(telling "$work/bf16-G-$v.log")"
    fi
  done
fi
check_bf16=
if [[ " ${bf16[*]} " == *" S "* ]]; then
  bundle S-bf16-check S bf16 -D "steps=$CHECK_STEPS"
  check_bf16=1
fi
echo "built the bf16 bundles (${bf16[*]:-none}; G's tensor-core tiles ${mma[*]:-none}) in $(took "$t0")"

# The CPU losses the GPU run is held to: the same model, settings and
# built-in data as bundles/S-f32-check.xlc.
t0=$EPOCHREALTIME
read -ra def <<<"${defs[S]}"
run "the CPU reference (xlc train --backend cpu)" xlc train models/gpt.xl "${model[@]}" "${def[@]}" -D precision=f32 \
  -D "steps=$CHECK_STEPS" --backend cpu --steps "$CHECK_STEPS" --out "$work/cpu-S"
cp "$work/cpu-S/metrics.jsonl" "$stage/cpu-S.metrics.jsonl"
n=$(grep -c '"loss"' "$stage/cpu-S.metrics.jsonl" || true)
[ "$n" -eq "$CHECK_STEPS" ] || fail "the CPU reference has $n losses, not $CHECK_STEPS ($work/cpu-S/metrics.jsonl)"
if [ -n "$check_bf16" ]; then
  run "the CPU bf16 reference (xlc train --backend cpu)" xlc train models/gpt.xl "${model[@]}" "${def[@]}" -D precision=bf16 \
    -D "steps=$CHECK_STEPS" --backend cpu --steps "$CHECK_STEPS" --out "$work/cpu-S-bf16"
  cp "$work/cpu-S-bf16/metrics.jsonl" "$stage/cpu-S-bf16.metrics.jsonl"
fi
read -ra def <<<"${defs[G]}"
for p in f32 bf16; do
  [ "$p" = f32 ] || [[ " ${bf16[*]} " == *" G "* ]] || continue
  run "the CPU reference of G $p (xlc train --backend cpu)" xlc train models/gpt.xl "${model[@]}" "${def[@]}" -D "precision=$p" \
    --backend cpu --steps "$G_CHECK_STEPS" --out "$work/cpu-G-$p"
  cp "$work/cpu-G-$p/metrics.jsonl" "$stage/cpu-G-$p.metrics.jsonl"
done
echo "trained the CPU references ($CHECK_STEPS steps of S, $G_CHECK_STEPS of G) in $(took "$t0")"

cp bench/peer_common.py bench/torch_gpt.py bench/torch_gpt_cuda.py bench/gpu_bench.py "$stage/peer/"
cp scripts/gpu-check.sh "$stage/gpu-check.sh"
chmod +x "$stage/gpu-check.sh" "$stage/peer/"*.py
{
  echo "# Written by scripts/gpu-prepare.sh; scripts/gpu-check.sh reads it."
  printf 'PREPARED_DATE=%q\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  printf 'PREPARED_COMMIT=%q\n' "$(git describe --always --dirty 2>/dev/null || echo unknown)"
  printf 'VARIANTS=%q\n' "$VARIANTS"
  printf 'GPU=%q\n' "$GPU"
  printf 'CHECK_STEPS=%q\n' "$CHECK_STEPS"
  printf 'CHECK_BF16=%q\n' "$check_bf16"
  printf 'G_CHECK_STEPS=%q\n' "$G_CHECK_STEPS"
  printf 'BF16=%q\n' "${bf16[*]:-}"
  printf 'MMA_VARIANTS=%q\n' "${mma[*]:-}"
  for c in S M G; do
    printf 'DEFS_%s=%q\n' "$c" "${model[*]} ${defs[$c]}"
  done
} >"$stage/prepared.env"

# The manifest: sha256, size and path of every file, and the total.
(
  cd "$stage"
  total=0 count=0
  while IFS= read -r f; do
    size=$(stat -c %s "$f")
    printf '%s  %s  %s\n' "$(sha256sum "$f" | cut -d' ' -f1)" "$size" "$f"
    total=$((total + size)) count=$((count + 1))
  done < <(find . -type f ! -name MANIFEST | sed 's|^\./||' | LC_ALL=C sort)
  printf 'total  %s  %s files\n' "$total" "$count"
) >"$work/MANIFEST"
mv "$work/MANIFEST" "$stage/MANIFEST"
bytes=$(find "$stage" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
mib=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
if [ "$bytes" -gt "$MAX_BYTES" ]; then
  fail "the prepared folder holds $mib MiB, over the $((MAX_BYTES / 1048576)) MiB a device run carries"
fi

if [ -e "$dir" ]; then
  rm -rf "$dir"
fi
mkdir -p "$(dirname "$dir")"
mv "$stage" "$dir"
echo "$dir: prepared at $(git describe --always --dirty 2>/dev/null || echo '?'):"
awk '$1 != "total" { if ($2 >= 1048576) printf "  %7.2f MiB  %s\n", $2 / 1048576, $3; else printf "  %7.1f KiB  %s\n", $2 / 1024, $3 }' "$dir/MANIFEST"
echo "$dir: $mib MiB in $(awk '$1 == "total" { print $3 }' "$dir/MANIFEST") files (limit $((MAX_BYTES / 1048576)) MiB)"
echo "next, on the GPU machine: bash $dir/gpu-check.sh   (here: scripts/gpu-check.sh --dry-run $dir)"
