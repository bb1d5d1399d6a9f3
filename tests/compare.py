"""Comparison of nested results (dicts / lists of numbers) from separate processes."""

import numpy as np


def assert_close(a, b, tol=1e-5):
    """Equal structure, numbers within ``tol`` (relative and absolute)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_close(a[k], b[k], tol)
    elif isinstance(a, list) and a and isinstance(a[0], list | dict):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_close(x, y, tol)
    else:
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
