#!/usr/bin/env bash
# Sets up the Python peers of bench/run.sh (PEERS=all runs this): a venv at
# bench/.venv (git-ignored) from python3 (3.11 or newer; PYTHON= picks
# another) with the CPU builds of the versions pinned in requirements.txt
# beside this file (PyTorch 2, JAX with jaxlib's XLA CPU backend, tinygrad
# and numpy), and clang, which tinygrad's CPU device compiles its kernels
# with (Debian's clang-19 when no clang is on PATH). Does nothing when all
# of that is already there.
#
#   bench/peers/setup.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=bench/.venv
req=bench/peers/requirements.txt
stamp=$venv/requirements.installed  # a copy of $req once it installed

if ! command -v clang >/dev/null && ! command -v clang-19 >/dev/null; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q clang-19
fi
if cmp -s "$req" "$stamp" && "$venv/bin/python" -c "import torch, jax, tinygrad, numpy" 2>/dev/null; then
  exit 0
fi

py=${PYTHON:-python3}
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "bench/peers/setup.sh: $py is $("$py" --version 2>&1); jax, torch and tinygrad want 3.11 or newer (set PYTHON=)" >&2
  exit 1
fi
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)
# The CPU-only wheel (about 200 MB) where PyTorch's index is reachable; PyPI's
# default Linux wheel is a CUDA build that pulls in about 5 GB of nvidia-*
# libraries, unused here but needed to import it.
torch=$(grep -m1 '^torch==' "$req")
if ! "$venv/bin/python" -m pip show -q "${torch%%=*}" 2>/dev/null ||
   [ "$("$venv/bin/python" -m pip show "${torch%%=*}" 2>/dev/null | sed -n 's/^Version: //p' | sed 's/+.*//')" != "${torch#*==}" ]; then
  "${pip[@]}" --index-url https://download.pytorch.org/whl/cpu --timeout 20 --retries 1 "$torch" 2>/dev/null ||
    echo "bench/peers/setup.sh: PyTorch's CPU index is unreachable; $torch from PyPI (a CUDA build, about 5 GB with its libraries)"
fi
"${pip[@]}" -r "$req"
"$venv/bin/python" -c "import torch, jax, tinygrad, numpy"
cp "$req" "$stamp"
echo "bench/.venv: $("$venv/bin/python" bench/peers/versions.py)"
