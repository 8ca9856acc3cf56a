#!/usr/bin/env bash
# Fetches the CUDA tools that check xlc's GPU kernels without a GPU:
# ptxas and libdevice from Debian non-free's nvidia-cuda-toolkit (CUDA
# 11.8), with a private apt configuration (the system's sources untouched),
# extracted into a cache folder outside the clone, keyed by the package's
# version, and linked from the git-ignored .cuda/. Prints the two
# environment settings the tests read:
#
#   eval "$(scripts/cuda-sdk.sh)"     # XLC_PTXAS=... XLC_LIBDEVICE=...
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
version=$(apt-cache "${opts[@]}" show nvidia-cuda-toolkit | sed -n 's/^Version: //p' | head -1)
dir=$cache/nvidia-cuda-toolkit_${version//[^A-Za-z0-9.+-]/_}
if [ ! -x "$dir/usr/bin/ptxas" ]; then
  (cd "$apt" && apt-get -q "${opts[@]}" download nvidia-cuda-toolkit) >&2
  mkdir -p "$cache"
  rm -rf "$dir.tmp"
  dpkg -x "$apt"/nvidia-cuda-toolkit_*.deb "$dir.tmp"
  mv "$dir.tmp" "$dir"
fi
[ -L .cuda ] || rm -rf .cuda  # a folder an older setup extracted
ln -sfn "$dir" .cuda
echo "export XLC_PTXAS=$PWD/.cuda/usr/bin/ptxas XLC_LIBDEVICE=$PWD/.cuda/usr/lib/nvidia-cuda-toolkit/libdevice/libdevice.10.bc"
