#!/usr/bin/env bash
# The GPU check of xlc's CUDA backend, run on a GPU machine (an H100 or
# H200; no Go, no LLVM, no network: python3 with PyTorch 2) from the folder
# scripts/gpu-prepare.sh prepared (this script is copied into it), or
# given its path. In under 5 minutes on an H200, each stage under its own
# `timeout` and its time printed:
#
#   1. header    the date, the card (nvidia-smi -L), its driver; without a
#                GPU it stops with one line;
#   2. manifest  every file of MANIFEST present, with its size and sha256;
#   3. test      ./cuda.test -test.v (the runtime/cuda tests, from the PTX
#                in cuda-ptx/), each test in a process of its own (a kernel
#                fault spoils its process's context) and a failed one again
#                with XLC_DEBUG=1, which names the kernel; its log kept;
#   4. train     20 steps of config S on cuda from bundles/S-f32-check.xlc,
#                each step's loss against the CPU's (cpu-S.metrics.jsonl):
#                relative error at most 1e-4 every step; prints the worst;
#                the same for S in bf16 (2e-2) and for the first 2 steps
#                of G's default f32 and bf16 bundles (cpu-G-*.metrics.jsonl);
#                a failed run again for one step with XLC_DEBUG=1;
#   5. sweep     xlc bench of each variant's G bundle (a few steps each),
#                f32 and bf16: matmul tiles (tensor-core tiles in bf16),
#                and attention by strips of whole rows against flash
#                attention (the default); the fastest of each is G's xlc
#                row below;
#   5b. profile  XLC_DEBUG=2 xlc bench of the fastest G bundle (and G's
#                bf16 one): where a step's device time goes, per kernel
#                and per lowering, kept in profile-G-*.txt;
#   6. time      S, M and G (GPT-2 small's shape): xlc bench (cuda) against
#                the PyTorch peer (peer/torch_gpt_cuda.py: eager,
#                torch.compile, and F.scaled_dot_product_attention as an
#                extra row, f32 with TF32 off), in interleaved rounds
#                (peer/gpu_bench.py rounds); bf16 rows (xlc's
#                -D precision=bf16 bundles against torch.autocast(bf16))
#                where prepare built the bundles. Each torch mode's warm-up
#                (compilation included) is timed apart and skipped, with a
#                note, past its budget; rounds stop at the config's budget;
#   7. table     ONE table: config, precision, system, median tokens/s,
#                fraction of the card's peak (the dense training FLOPs per
#                token bench/run.sh counts, over 67 TFLOP/s f32 and 989 bf16
#                on H100/H200), xlc's ratio to each peer.
#
# Every number also goes to $OUT (or ./gpu-out): results.jsonl (one record
# per number, each with the date and card), table.txt, check.log (all this
# output), cuda-test.log and train-S.metrics.jsonl. A stage that fails or
# runs out of time is reported and the later ones still run; the exit
# status is 1 if any failed. The budgets below are seconds (the environment
# may override each): the stages before the timing have fixed ones, and
# the timing stage gets what they leave of TOTAL (400 s), so the check ends
# within TOTAL; --dry-run prints the plan.
#
#   bash DIR/gpu-check.sh                  on the GPU machine
#   scripts/gpu-check.sh [DIR]             (DIR defaults to the script's own
#                                          folder when prepared, else gpu/)
#   scripts/gpu-check.sh --dry-run [DIR]   anywhere, no GPU: checks the folder
#                                          (files, sizes, sha256, the manifest's
#                                          total) and prints the plan
set -euo pipefail

TOTAL=${TOTAL:-400}           # the whole check's target; the timing stage gets what is left
B_HEADER=${B_HEADER:-5}
B_MANIFEST=${B_MANIFEST:-3}
B_TEST=${B_TEST:-50}
T_TEST=${T_TEST:-20}          # each test's own limit within B_TEST
B_TRAIN=${B_TRAIN:-75}
B_SWEEP=${B_SWEEP:-18}        # each tile variant
B_PROFILE=${B_PROFILE:-30}    # both profiles
SWEEP_STEPS=${SWEEP_STEPS:-2} # and one warm-up step
TIME_SHARES=${TIME_SHARES:-S=0.24,M=0.26,G=0.5}  # each config's share of the timing stage,
TIME_START=${TIME_START:-15}  # less this for torch's start and slack
COMPILE_BUDGETS=${COMPILE_BUDGETS:-30,G=40}      # each torch.compile warm-up
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-S=20,M=10,G=3} # timed steps per row and round, both sides
MODES=${MODES:-eager,compile,sdpa}
CONFIGS=${CONFIGS:-S,M,G}
PEER_DEVICE=${PEER_DEVICE:-cuda}  # cpu: a rehearsal on a machine without a GPU (stand-ins for xlc and nvidia-smi)
B_TABLE=${B_TABLE:-5}
TOLERANCE=1e-4
TOLERANCE_BF16=2e-2           # S bf16: tensor cores and the CPU's dot sum bf16 products in other orders
MAX_BYTES=$((64 * 1024 * 1024))

self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
fail() {
  echo "gpu-check.sh: $*" >&2
  exit 1
}
took() { awk -v a="$EPOCHREALTIME" -v b="$1" 'BEGIN { printf "%.1f", a - b }'; }

# verify_manifest: every file MANIFEST lists, present, with its size and
# sha256, and the total; prints one line, and the differences; 1 if any.
verify_manifest() {
  local bad=0 n=0 total=0 sum size path want_total
  [ -f "$dir/MANIFEST" ] || { echo "manifest: $dir/MANIFEST is missing"; return 1; }
  while read -r sum size path; do
    if [ "$sum" = total ]; then
      want_total=$size
      continue
    fi
    n=$((n + 1)) total=$((total + size))
    if [ ! -f "$dir/$path" ]; then
      echo "  missing: $path"
      bad=$((bad + 1))
    elif [ "$(stat -c %s "$dir/$path")" != "$size" ]; then
      echo "  size differs: $path ($(stat -c %s "$dir/$path") bytes, MANIFEST $size)"
      bad=$((bad + 1))
    elif [ "$(sha256sum "$dir/$path" | cut -d' ' -f1)" != "$sum" ]; then
      echo "  sha256 differs: $path"
      bad=$((bad + 1))
    fi
  done <"$dir/MANIFEST"
  if [ "${want_total:-}" != "$total" ]; then
    echo "  the total line says ${want_total:-nothing}, the files add up to $total"
    bad=$((bad + 1))
  fi
  if [ "$total" -gt "$MAX_BYTES" ]; then
    echo "  $total bytes: over the $((MAX_BYTES / 1048576)) MiB a device run carries"
    bad=$((bad + 1))
  fi
  local extra
  extra=$(cd "$dir" && find . -path ./gpu-out -prune -o -type f ! -name MANIFEST -print | sed 's|^\./||' |
    while IFS= read -r f; do grep -qF "  $f" MANIFEST || echo "$f"; done | head -5)
  [ -z "$extra" ] || echo "  not in MANIFEST (ignored): $(paste -sd' ' <<<"$extra")"
  echo "manifest: $n files, $(awk -v b="$total" 'BEGIN { printf "%.1f", b / 1048576 }') MiB, $bad problem(s)"
  [ "$bad" -eq 0 ]
}

# The rows of the timing stage: CONFIG PRECISION BUNDLE LABEL, G's with
# the f32 variant $1 and the bf16 one $2.
timing_rows() {
  local best=$1 mma=${2:-default} c
  for c in S M; do
    echo "$c f32 $dir/bundles/$c-f32.xlc -"
  done
  echo "G f32 $dir/bundles/G-f32-$best.xlc $(variant_label "$best")"
  for c in S M G; do
    if [ "$c" = G ] && [ "$mma" != default ]; then
      echo "G bf16 $dir/bundles/G-bf16-$mma.xlc $(variant_label "$mma")"
    elif [ -f "$dir/bundles/$c-bf16.xlc" ]; then
      echo "$c bf16 $dir/bundles/$c-bf16.xlc -"
    fi
  done
}

# variant_label is the timing row's label of a G bundle variant.
variant_label() {
  if [ "$1" = strips ]; then echo strips-attention; else echo "$1-tiles"; fi
}

# bf16_sweep lists G's bf16 variants and their bundles: the default, then
# MMA_VARIANTS', where prepare built G-bf16.
bf16_sweep() {
  local v
  [ -f "$dir/bundles/G-bf16.xlc" ] || return 0
  echo "default $dir/bundles/G-bf16.xlc"
  for v in ${MMA_VARIANTS:-}; do
    echo "$v $dir/bundles/G-bf16-$v.xlc"
  done
}

# sweeps is how many bundles the sweep times.
sweeps() {
  echo $(($(wc -w <<<"$VARIANTS") + $(bf16_sweep | wc -l)))
}

# --- the stages, each run as `gpu-check.sh __stage NAME` under timeout ----

stage_manifest() {
  verify_manifest
}

# stage_test runs each top-level test in a process of its own: a kernel
# fault leaves the CUDA context unusable for the rest of its process. A
# failed test runs again with XLC_DEBUG=1, which launches kernel by kernel
# and names the one that failed.
stage_test() {
  local cwd=$work/cuda-test rc=0 t trc log=$out/cuda-test.log tests
  mkdir -p "$cwd"
  : >"$log"
  [ ! -d "$dir/cuda-testdata" ] || ln -sfn "$dir/cuda-testdata" "$cwd/testdata"
  # The tests' PTX was recorded where LLVM is (there is none here).
  tests=$(cd "$cwd" && "$dir/cuda.test" -test.list '^Test' 2>>"$log") || { echo "cuda.test -test.list failed: $(tail -1 "$log")"; return 1; }
  for t in $tests; do
    trc=0
    (cd "$cwd" && XLC_CUDA_PTX="$dir/cuda-ptx" "$dir/cuda.test" -test.v -test.run "^$t\$" -test.timeout "${T_TEST}s") >>"$log" 2>&1 || trc=$?
    if [ "$trc" -ne 0 ]; then
      rc=1
      echo "  $t: exit $trc; again with XLC_DEBUG=1:"
      (cd "$cwd" && XLC_DEBUG=1 XLC_CUDA_PTX="$dir/cuda-ptx" "$dir/cuda.test" -test.v -test.run "^$t\$" -test.timeout "${T_TEST}s") >"$work/debug.log" 2>&1 || true
      { echo "=== XLC_DEBUG=1 rerun of $t"; cat "$work/debug.log"; } >>"$log"
      grep -i -m5 -- 'kernel\|cuda:\|panic:' "$work/debug.log" | sed 's/^/    /' || true
    fi
  done
  local pass fail skip
  pass=$(grep -c -- '^--- PASS' "$log" || true)
  fail=$(grep -c -- '^--- FAIL' "$log" || true)
  skip=$(grep -c -- '^--- SKIP' "$log" || true)
  grep -- '--- FAIL\|^panic:' "$log" | sed -n '1,20p' || true
  echo "cuda.test: $pass passed, $fail failed, $skip skipped (reruns included), $(wc -w <<<"$tests") tests"
  "$PY" "$peer/gpu_bench.py" record "$results" kind=test passed="$pass" failed="$fail" skipped="$skip" exit="$rc"
  return "$rc"
}

# train_gpu NAME BUNDLE STEPS: xlc train of the bundle on cuda into
# $work/train-NAME, its last lines printed; on failure again for one step
# with XLC_DEBUG=1, which names a failing kernel.
train_gpu() {
  local name=$1 bundle=$2 steps=$3 rc=0
  "$dir/xlc" train --bundle "$bundle" --backend cuda --steps "$steps" --out "$work/train-$name" \
    >"$work/train-$name.log" 2>&1 || rc=$?
  tr '\r' '\n' <"$work/train-$name.log" | sed -n '/[^[:space:]]/p' | tail -3 | sed "s/^/  $name: /"
  if [ "$rc" -ne 0 ]; then
    echo "  $name: xlc train exited $rc; one step with XLC_DEBUG=1:"
    XLC_DEBUG=1 "$dir/xlc" train --bundle "$bundle" --backend cuda --steps 1 --out "$work/debug-$name" 2>&1 |
      tr '\r' '\n' | sed -n '/[^[:space:]]/p' | tail -3 | sed 's/^/    /' || true
  fi
  return "$rc"
}

# stage_train holds S's 20 steps to the CPU's losses, f32 and (on tensor
# cores) bf16, and the first G_CHECK_STEPS of G's default f32 and bf16
# bundles likewise: the only check of G's shapes (seq 1024, multi-block
# rows) before they are timed.
stage_train() {
  local ok=0 p b tol
  if train_gpu S-f32 "$dir/bundles/S-f32-check.xlc" "$CHECK_STEPS"; then
    cp "$work/train-S-f32/metrics.jsonl" "$out/train-S.metrics.jsonl"
    "$PY" "$peer/gpu_bench.py" losses "$results" "$dir/cpu-S.metrics.jsonl" "$work/train-S-f32/metrics.jsonl" \
      --steps "$CHECK_STEPS" --tol "$TOLERANCE" --label "S f32" || ok=1
  else
    "$PY" "$peer/gpu_bench.py" record "$results" kind=losses label="S f32" ok=false why="xlc train failed"
    ok=1
  fi
  if [ -n "${CHECK_BF16:-}" ]; then
    if train_gpu S-bf16 "$dir/bundles/S-bf16-check.xlc" "$CHECK_STEPS"; then
      "$PY" "$peer/gpu_bench.py" losses "$results" "$dir/cpu-S-bf16.metrics.jsonl" "$work/train-S-bf16/metrics.jsonl" \
        --steps "$CHECK_STEPS" --tol "$TOLERANCE_BF16" --label "S bf16" || ok=1
    else
      ok=1
    fi
  fi
  for p in f32 bf16; do
    b=$dir/bundles/G-$p.xlc
    [ "$p" = bf16 ] || b=$dir/bundles/G-f32-default.xlc
    [ -f "$b" ] && [ -f "$dir/cpu-G-$p.metrics.jsonl" ] || continue
    tol=$TOLERANCE
    [ "$p" = f32 ] || tol=$TOLERANCE_BF16
    if train_gpu "G-$p" "$b" "$G_CHECK_STEPS"; then
      "$PY" "$peer/gpu_bench.py" losses "$results" "$dir/cpu-G-$p.metrics.jsonl" "$work/train-G-$p/metrics.jsonl" \
        --steps "$G_CHECK_STEPS" --tol "$tol" --label "G $p" || ok=1
    else
      "$PY" "$peer/gpu_bench.py" record "$results" kind=losses label="G $p" ok=false why="xlc train failed"
      ok=1
    fi
  done
  return "$ok"
}

stage_sweep() {
  local v f line rate best="" best_rate=0 failed=0 p
  for p in f32 bf16; do
    best="" best_rate=0
    while read -r v f; do
      if line=$(timeout -k 3 "$B_SWEEP" "$dir/xlc" bench --bundle "$f" --backend cuda \
        --steps "$SWEEP_STEPS" --warmup 1 2>&1) && rate=$(sed -nE 's/.*: ([0-9.]+) tokens\/s.*/\1/p' <<<"$line") && [ -n "$rate" ]; then
        echo "  G $p $v: $rate tokens/s"
        "$PY" "$peer/gpu_bench.py" record "$results" kind=sweep variant="$p-$v" tokens_per_s="$rate" steps="$SWEEP_STEPS"
        if awk -v a="$rate" -v b="$best_rate" 'BEGIN { exit !(a > b) }'; then
          best=$v best_rate=$rate
        fi
      else
        echo "  G $p $v: FAILED: $(tail -1 <<<"${line:-ran over ${B_SWEEP} s}")"
        [ "$failed" -gt 0 ] || XLC_DEBUG=1 timeout -k 3 "$B_SWEEP" "$dir/xlc" bench --bundle "$f" --backend cuda \
          --steps 1 --warmup 0 2>&1 | tail -2 | sed 's/^/    XLC_DEBUG=1: /' || true
        "$PY" "$peer/gpu_bench.py" record "$results" kind=sweep variant="$p-$v" why="$(tail -1 <<<"${line:-timeout}")"
        failed=$((failed + 1))
      fi
    done < <(if [ "$p" = f32 ]; then for v in $VARIANTS; do echo "$v $dir/bundles/G-f32-$v.xlc"; done; else bf16_sweep; fi)
    if [ -n "$best" ]; then
      if [ "$p" = f32 ]; then echo "$best" >"$work/best-variant"; else echo "$best" >"$work/best-mma"; fi
      echo "best $p variant: $best ($best_rate tokens/s)"
    fi
  done
  [ "$failed" -eq 0 ]
}

stage_profile() {
  local best=default p f rc=0
  [ ! -f "$work/best-variant" ] || best=$(cat "$work/best-variant")
  local prc
  for p in "f32-$best" bf16; do
    f=$dir/bundles/G-$p.xlc
    [ -f "$f" ] || continue
    prc=0
    XLC_DEBUG=2 timeout -k 3 "$((B_PROFILE / 2))" "$dir/xlc" bench --bundle "$f" --backend cuda --steps 3 --warmup 1 \
      >"$out/profile-G-$p.txt" 2>&1 || prc=$?
    [ "$prc" -eq 0 ] || rc=$prc
    echo "  G $p (exit $prc; ignore its tokens/s: profiling serializes the kernels):"
    sed -n '/[^[:space:]]/p' "$out/profile-G-$p.txt" | sed -n '1,48s/^/    /p'
  done
  return "$rc"
}

# config_budgets SECONDS: "S=..,M=..,G=.." of TIME_SHARES of SECONDS less
# TIME_START.
config_budgets() {
  tr ',' '\n' <<<"$TIME_SHARES" | awk -F= -v t="$1" -v s="$TIME_START" '{ printf "%s%s=%.0f", (NR > 1 ? "," : ""), $1, $2 * (t - s) }'
}

stage_time() {
  local best=default mma=default args=() c p b l
  [ ! -f "$work/best-variant" ] || best=$(cat "$work/best-variant")
  [ ! -f "$work/best-mma" ] || mma=$(cat "$work/best-mma")
  while read -r c p b l; do
    [ "$l" != - ] || l=""
    args+=(--row "$c" "$p" "$b" "$l")
  done < <(timing_rows "$best" "$mma")
  "$PY" "$peer/gpu_bench.py" rounds "$results" --xlc "$dir/xlc" "${args[@]}" --configs "$CONFIGS" --device "$PEER_DEVICE" \
    --rounds "$ROUNDS" --modes "$MODES" --budget "$(config_budgets "$B_TIME")" --total "$((B_TIME - 3))" --compile-budget "$COMPILE_BUDGETS" --steps "$STEPS"
}

stage_table() {
  "$PY" "$peer/gpu_bench.py" table "$results" --text "$out/table.txt"
}

if [ "${1:-}" = __stage ]; then
  "stage_$2"
  exit
fi

# --- the arguments and the folder -----------------------------------------

dry=
if [ "${1:-}" = --dry-run ]; then
  dry=1
  shift
fi
[ $# -le 1 ] || fail "usage: gpu-check.sh [--dry-run] [DIR]"
if [ $# -eq 1 ]; then
  dir=$1
elif [ -f "$(dirname "$self")/prepared.env" ]; then
  dir=$(dirname "$self")
else
  dir=$(dirname "$self")/../gpu
fi
[ -f "$dir/prepared.env" ] || fail "$dir is not a prepared folder (no prepared.env): run scripts/gpu-prepare.sh first"
dir=$(cd "$dir" && pwd)
peer=$dir/peer
# shellcheck source=/dev/null
. "$dir/prepared.env"
: "${VARIANTS:?prepared.env names no VARIANTS}" "${CHECK_STEPS:?prepared.env names no CHECK_STEPS}"
G_CHECK_STEPS=${G_CHECK_STEPS:-2}

if [ -n "$dry" ]; then
  echo "gpu-check.sh --dry-run: $dir, prepared $PREPARED_DATE at $PREPARED_COMMIT"
  ok=0
  verify_manifest || ok=1
  for f in xlc cuda.test; do
    [ -x "$dir/$f" ] || { echo "  not executable: $f"; ok=1; }
  done
  for f in bundles/S-f32.xlc bundles/S-f32-check.xlc bundles/M-f32.xlc \
    $(for v in $VARIANTS; do echo "bundles/G-f32-$v.xlc"; done) \
    $(for v in ${MMA_VARIANTS:-}; do echo "bundles/G-bf16-$v.xlc"; done) \
    cpu-S.metrics.jsonl ${CHECK_BF16:+bundles/S-bf16-check.xlc cpu-S-bf16.metrics.jsonl} cpu-G-f32.metrics.jsonl peer/peer_common.py peer/torch_gpt.py peer/torch_gpt_cuda.py peer/gpu_bench.py gpu-check.sh; do
    [ -s "$dir/$f" ] || { echo "  missing or empty: $f"; ok=1; }
  done
  [ -n "$(ls -A "$dir/cuda-ptx" 2>/dev/null)" ] || { echo "  missing or empty: cuda-ptx/"; ok=1; }
  n=$(grep -c '"loss"' "$dir/cpu-S.metrics.jsonl" 2>/dev/null || true)
  [ "$n" -eq "$CHECK_STEPS" ] || { echo "  cpu-S.metrics.jsonl has ${n:-no} losses, not $CHECK_STEPS"; ok=1; }
  nv=$(sweeps)
  before=$((B_HEADER + B_MANIFEST + B_TEST + B_TRAIN + nv * B_SWEEP + 5 + B_PROFILE))
  B_TIME=$((TOTAL - before - B_TABLE))
  cat <<EOF
plan (budgets in seconds; at most $TOTAL s in all$([ "$TOTAL" -le 420 ] || echo ", NOT under the 420 s target")):
  1 header    $B_HEADER   date, nvidia-smi -L, driver; stop without a GPU
  2 manifest  $B_MANIFEST   sha256 and size of every file
  3 test      $B_TEST   ./cuda.test -test.v -test.run '^TestX\$' -test.timeout ${T_TEST}s for each test;
                  a failed one again with XLC_DEBUG=1
  4 train     $B_TRAIN   xlc train --bundle bundles/S-f32-check.xlc --backend cuda --steps $CHECK_STEPS;
                  losses against cpu-S.metrics.jsonl, relative error <= $TOLERANCE each step;
                  ${CHECK_BF16:+S-bf16-check.xlc likewise (<= $TOLERANCE_BF16); }G-f32-default.xlc$(grep -q ' G ' <<<" ${BF16:-} " && echo " and G-bf16.xlc") for $G_CHECK_STEPS steps (<= $TOLERANCE, $TOLERANCE_BF16)
  5 sweep     $((nv * B_SWEEP + 5))   xlc bench --steps $SWEEP_STEPS --warmup 1, $B_SWEEP s each: $(for v in $VARIANTS; do printf 'G-f32-%s ' "$v"; done)$(bf16_sweep | while read -r v f; do b=${f##*/}; printf '%s ' "${b%.xlc}"; done)
  5b profile  $B_PROFILE   XLC_DEBUG=2 xlc bench --steps 3 of G's fastest f32 bundle and its bf16 one
  6 time      $B_TIME+ what the stages before leave of $TOTAL s, at least $B_TIME (configs $(config_budgets "$B_TIME") at least),
                  $ROUNDS interleaved rounds at most, compile $COMPILE_BUDGETS,
                  timed steps $STEPS, torch modes $MODES (TF32 off); rows:
EOF
  timing_rows "<best>" "${MMA_VARIANTS:+<best>}" | while read -r c p b _; do
    printf '                    %s %-4s xlc cuda %s; torch %s\n' "$c" "$p" "${b#"$dir"/}" "$MODES"
  done
  echo "  7 table     $B_TABLE    config, precision, system, tokens/s, % of peak, xlc/peer"
  echo "bf16 bundles: ${BF16:-none}"
  [ "$ok" -eq 0 ] && echo "dry run: the folder is complete" || echo "dry run: the folder is NOT complete"
  exit "$ok"
fi

# --- the check -------------------------------------------------------------

out=${OUT:-$PWD/gpu-out}
mkdir -p "$out"
out=$(cd "$out" && pwd)
results=$out/results.jsonl
: >"$results"
exec > >(tee "$out/check.log") 2>&1
tee_pid=$!
work=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
# At the end: the scratch folder away, and check.log complete before exit.
trap 'rm -rf "$work"; exec >&- 2>&-; wait "$tee_pid" 2>/dev/null || true' EXIT
PY=${PYTHON:-python3}
export dir peer out results work PY VARIANTS MMA_VARIANTS CHECK_STEPS CHECK_BF16 G_CHECK_STEPS B_TEST T_TEST B_SWEEP B_PROFILE SWEEP_STEPS TOLERANCE TOLERANCE_BF16
export ROUNDS MODES CONFIGS PEER_DEVICE TIME_SHARES TIME_START COMPILE_BUDGETS STEPS
export PYTHONUNBUFFERED=1 XLC_CACHE=$work/xlc-cache CUDA_CACHE_MAXSIZE=4294967296

t_all=$EPOCHREALTIME
# A carried folder may lose its files' modes.
chmod +x "$dir/xlc" "$dir/cuda.test" 2>/dev/null || true
echo "== 1 header"
t0=$EPOCHREALTIME
date -u '+date: %Y-%m-%d %H:%M:%S UTC'
if ! command -v nvidia-smi >/dev/null || ! gpus=$(timeout "$B_HEADER" nvidia-smi -L 2>/dev/null) || ! grep -q '^GPU ' <<<"$gpus"; then
  fail "no GPU here (nvidia-smi -L lists none): run this on the GPU machine, or --dry-run to check the folder"
fi
echo "$gpus"
query=$(timeout "$B_HEADER" nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader | head -1)
GPU_CARD=$(cut -d, -f1 <<<"$query" | sed 's/^ *//; s/ *$//')
driver=$(cut -d, -f2 <<<"$query" | tr -d ' ')
export GPU_CARD
echo "card: $query (name, driver, memory, max SM clock)"
# xlc and cuda.test link libcuda.so.1, the driver's: where the loader
# does not find it, the usual folders of a driver mount.
if ldd "$dir/xlc" 2>/dev/null | grep -q 'libcuda.so.1 => not found'; then
  for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/cuda/compat; do
    if [ -e "$d/libcuda.so.1" ]; then
      export LD_LIBRARY_PATH=$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
      break
    fi
  done
fi
echo "libcuda: $(ldd "$dir/xlc" 2>/dev/null | sed -n 's/.*libcuda.so.1 => \(\S*\).*/\1/p' | head -1)"
echo "folder: $dir, prepared $PREPARED_DATE at $PREPARED_COMMIT; results: $out"
"$PY" "$peer/gpu_bench.py" record "$results" kind=host card="$GPU_CARD" driver="$driver" \
  gpus="$(paste -sd';' <<<"$gpus")" prepared="$PREPARED_COMMIT" \
  torch="$("$PY" -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null || echo none)"
echo "-- header: $(took "$t0") s"

failed=()
# stage N NAME BUDGET: runs stage_NAME under timeout, prints and records
# its time and outcome.
stage() {
  local n=$1 name=$2 budget=$3 rc=0 t0=$EPOCHREALTIME status=ok
  echo "== $n $name (budget $budget s)"
  timeout -k 5 "$budget" bash "$self" __stage "$name" || rc=$?
  local secs
  secs=$(took "$t0")
  case $rc in
    0) ;;
    124 | 137) status="ran out of time" ;;
    *) status="failed (exit $rc)" ;;
  esac
  [ "$rc" -eq 0 ] || failed+=("$name")
  echo "-- $name: $status in $secs s"
  "$PY" "$peer/gpu_bench.py" record "$results" kind=stage name="$name" status="$status" seconds="$secs"
}

stage 2 manifest "$B_MANIFEST"
stage 3 test "$B_TEST"
stage 4 train "$B_TRAIN"
stage 5 sweep "$(($(sweeps) * B_SWEEP + 5))"
stage 5b profile "$B_PROFILE"
B_TIME=$(awk -v a="$EPOCHREALTIME" -v b="$t_all" -v t="$TOTAL" -v r="$B_TABLE" 'BEGIN { printf "%d", t - (a - b) - r }')
export B_TIME
stage 6 time "$B_TIME"
echo "stages: ${#failed[@]} failed${failed[*]:+ (${failed[*]})}; all in $(took "$t_all") s"
echo "== 7 table"
timeout -k 2 "$B_TABLE" bash "$self" __stage table || failed+=(table)
[ "${#failed[@]}" -eq 0 ]
