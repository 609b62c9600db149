"""Hyperbolic Aware Minimization: an add-on to any PyTorch optimizer (depends only on torch)."""

from .ham import HAM, default_param_filter
from .metrics import SignFlips, density
from .sam import SAM

__all__ = ["HAM", "SAM", "SignFlips", "density", "default_param_filter"]
__version__ = "0.1.0"
