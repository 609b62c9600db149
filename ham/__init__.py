"""Hyperbolic Aware Minimization: an add-on to any PyTorch optimizer (depends only on torch)."""

from ham.ham import HAM, default_param_filter
from ham.metrics import SignFlips, density
from ham.sam import SAM

__all__ = ["HAM", "SAM", "SignFlips", "density", "default_param_filter"]
__version__ = "0.1.0"
