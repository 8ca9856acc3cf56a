"""Prints the versions of the Python peers in bench/.venv on one line
(torch's with its build: +cpu is the CPU wheel, +cu... the CUDA build)."""
from importlib.metadata import version

import torch

print(f"torch {torch.__version__}, jax {version('jax')} (jaxlib {version('jaxlib')}), "
      f"tinygrad {version('tinygrad')}, numpy {version('numpy')}")
