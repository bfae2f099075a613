"""Row-wise L2 normalisation: the one helper behind cosine similarity everywhere (index, recommend,
evaluate, gender, the timbre join, plots)."""

from __future__ import annotations

import numpy as np


def l2_rows(x: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """Each row (the last axis) scaled to unit L2 norm, computed in ``dtype``; zero rows stay zero.
    [N, D] -> [N, D], or [D] -> [D]."""
    x = np.asarray(x, dtype=dtype)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.where(n > 0, n, 1.0)).astype(dtype, copy=False)
