#!/usr/bin/env bash
# Benchmark of the dot kernels (codegen.DotKernel) against OpenBLAS sgemm,
# both on 2 threads, interleaved in one run; prints GFLOP/s medians and the
# ratio. Needs LLVM 19 (opt-19, llc-19), cc and libopenblas0 (Debian:
# apt-get install libopenblas0-openmp or libopenblas0-pthread).
#
#   bench/dot/run.sh [ROUNDS] [gen flags: -only NAMES -mr -nr -kc -mc -nc -ku -packa]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-10}
shift || true
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go run ./bench/dot/gen -o "$tmp/dot.ll" -t "$tmp/dot.tsv" "$@"
opt-19 -O3 "$tmp/dot.ll" -o "$tmp/dot.bc"
llc-19 -O3 -filetype=obj -relocation-model=pic "$tmp/dot.bc" -o "$tmp/dot.o"
cc -shared "$tmp/dot.o" -o "$tmp/dot.so"
cc -O2 -o "$tmp/driver" bench/dot/driver.c -ldl -lpthread -lm
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2
"$tmp/driver" "$tmp/dot.so" "$tmp/dot.tsv" "$rounds"
