#!/usr/bin/env bash
# Fetches the CUDA pieces xlc's GPU code needs without a GPU, from Debian
# non-free (CUDA 11.8), with a private apt configuration (the system's
# sources untouched), extracted into a cache folder outside the clone,
# keyed by the packages' versions:
#
#   - ptxas and libdevice (nvidia-cuda-toolkit), which check the GPU
#     kernels, linked from the git-ignored .cuda/;
#   - cuda.h and the link-time stub libcuda.so (from nvidia-cuda-dev, a
#     774 MB download of which two files are kept) and the driver library
#     libcuda.so.1 (libcuda1), which build the cuda-tagged xlc and let its
#     tests start here and see that there is no GPU.
#
# Prints the settings the tests and the cuda build read:
#
#   eval "$(scripts/cuda-sdk.sh)"
#   # XLC_PTXAS, XLC_LIBDEVICE; XLC_CUDA_CGO (CGO_CPPFLAGS=-I... CGO_LDFLAGS=-L...,
#   # for env); XLC_CUDA_LIB (the folder of libcuda.so.1, for LD_LIBRARY_PATH)
#   env $XLC_CUDA_CGO LD_LIBRARY_PATH=$XLC_CUDA_LIB go test -tags cuda ./runtime/cuda
#
# XLC_CUDA_CGO sets CGO_CPPFLAGS, not CGO_CFLAGS, so that cgo keeps its
# default -O2 for every other package; nothing it prints changes a build
# without -tags cuda.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${XLC_CUDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/xlc-cuda}
apt=$(mktemp -d)
trap 'rm -rf "$apt"' EXIT
mkdir -p "$apt/parts" "$apt/lists/partial" "$apt/cache/archives/partial"
codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: main contrib non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
  "$codename" >"$apt/parts/debian.sources"
opts=(-o "Dir::Etc::SourceParts=$apt/parts" -o Dir::Etc::SourceList=/dev/null -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache")
apt-get -q "${opts[@]}" update >&2
version() { apt-cache "${opts[@]}" show "$1" | sed -n 's/^Version: //p' | head -1; }
key() { echo "${1//[^A-Za-z0-9.+-]/_}"; }
mkdir -p "$cache"

toolkit=$(version nvidia-cuda-toolkit)
dir=$cache/nvidia-cuda-toolkit_$(key "$toolkit")
if [ ! -x "$dir/usr/bin/ptxas" ]; then
  (cd "$apt" && apt-get -q "${opts[@]}" download nvidia-cuda-toolkit) >&2
  rm -rf "$dir.tmp"
  dpkg -x "$apt"/nvidia-cuda-toolkit_*.deb "$dir.tmp"
  mv "$dir.tmp" "$dir"
fi
[ -L .cuda ] || rm -rf .cuda  # a folder an older setup extracted
ln -sfn "$dir" .cuda

# The driver API: the header and stub from nvidia-cuda-dev, the library
# from libcuda1, in one folder keyed by both versions. Only the three
# files are kept; the toolkit's other 2.7 GB are read past (about 20 s
# to decompress, once per version).
dev=$(version nvidia-cuda-dev)
drv=$(version libcuda1)
ddir=$cache/cuda-driver_$(key "$dev")_$(key "$drv")
if [ ! -e "$ddir/lib/libcuda.so.1" ]; then
  (cd "$apt" && apt-get -q "${opts[@]}" download nvidia-cuda-dev libcuda1) >&2
  rm -rf "$ddir.tmp"
  mkdir -p "$ddir.tmp/x" "$ddir.tmp/include" "$ddir.tmp/stubs" "$ddir.tmp/lib"
  dpkg-deb --fsys-tarfile "$apt"/nvidia-cuda-dev_*.deb |
    tar -x -C "$ddir.tmp/x" ./usr/include/cuda.h ./usr/lib/x86_64-linux-gnu/stubs/libcuda.so
  mv "$ddir.tmp/x/usr/include/cuda.h" "$ddir.tmp/include/"
  mv "$ddir.tmp/x/usr/lib/x86_64-linux-gnu/stubs/libcuda.so" "$ddir.tmp/stubs/"
  dpkg -x "$apt"/libcuda1_*.deb "$ddir.tmp/x"
  so=$(find "$ddir.tmp/x" -name 'libcuda.so.[0-9]*.*' -type f | head -1)
  [ -n "$so" ] || { echo "cuda-sdk.sh: libcuda1 holds no libcuda.so.N" >&2; exit 1; }
  mv "$so" "$ddir.tmp/lib/"
  ln -s "$(basename "$so")" "$ddir.tmp/lib/libcuda.so.1"
  rm -rf "$ddir.tmp/x"
  mv "$ddir.tmp" "$ddir"
fi
echo "export XLC_PTXAS=$PWD/.cuda/usr/bin/ptxas XLC_LIBDEVICE=$PWD/.cuda/usr/lib/nvidia-cuda-toolkit/libdevice/libdevice.10.bc"
echo "export XLC_CUDA_CGO='CGO_CPPFLAGS=-I$ddir/include CGO_LDFLAGS=-L$ddir/stubs' XLC_CUDA_LIB=$ddir/lib"
