"""Backends: JAX (Flax NNX) and torch. Each is imported only when a module of its kind is
given to ``kp.Model``, so JAX users never import torch and torch users never import JAX."""
