"""Checkpoints: plain types + tensors, written atomically, read with ``weights_only=True``.

A checkpoint is a dict that rebuilds its model without today's vocal.yaml::

    kind            "contrastive" | "tcae"
    format_version  FORMAT_VERSION
    model_config    the model's own config dataclass as a dict (the model is rebuilt from it)
    model           state dict
    extra           task state needed to resume (key encoder, MoCo queue, ...): tensors / plain types
    optimizer       optimizer state dict
    epoch, step     completed epochs / optimizer steps
    metrics         last validation metrics (and best score)
    config          the resolved vocal.yaml of the run (dict)
    versions        python / torch / numpy / vocal versions
"""

from __future__ import annotations

import pickle
import platform
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vocalcli import project as project_mod
from vocalcli.errors import CheckpointError

FORMAT_VERSION = 1


def versions() -> dict[str, str]:
    import vocalcli

    return {"python": platform.python_version(), "torch": str(torch.__version__), "numpy": str(np.__version__),
            "vocal": str(getattr(vocalcli, "__version__", "0"))}


def save(path: Path, *, kind: str, model_config: dict[str, Any], model: dict[str, torch.Tensor],
         optimizer: dict[str, Any] | None = None, epoch: int = 0, step: int = 0,
         metrics: dict[str, Any] | None = None, config: dict[str, Any] | None = None,
         extra: dict[str, Any] | None = None) -> None:
    """Write a checkpoint atomically (temp file + rename); tensors are moved to CPU first."""
    ckpt = {
        "kind": kind,
        "format_version": FORMAT_VERSION,
        "model_config": dict(model_config),
        "model": _cpu(model),
        "extra": _cpu(extra or {}),
        "optimizer": _cpu(optimizer) if optimizer is not None else None,
        "epoch": int(epoch),
        "step": int(step),
        "metrics": _plain(metrics or {}),
        "config": config or {},
        "versions": versions(),
    }
    with project_mod.atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def load(path: Path, kind: str | None = None, train_command: str = "") -> dict[str, Any]:
    """Read a checkpoint safely; check its kind and format version. CPU tensors."""
    hint = f"; run '{train_command}' to make it" if train_command else ""
    if not Path(path).exists():
        raise CheckpointError(f"no checkpoint at {path}{hint}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's text (dozens of lines) ends by suggesting weights_only=False, which would run the file's code
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if refused is None:  # bytes that are no pickle at all
            raise CheckpointError(f"{path} is not a readable vocal checkpoint (not a torch checkpoint file); delete "
                                  f"it and train again{hint}") from None
        raise CheckpointError(f"{path} is not a vocal checkpoint: it holds pickled Python objects "
                              f"({refused.group(1)}), which vocal never runs, so it was not loaded; delete it and "
                              f"train again{hint}") from None
    except Exception as e:  # truncated zip, not a torch file, ...: errors come in many types
        raise CheckpointError(f"{path} is not a readable vocal checkpoint ({_first_sentence(e)}); delete it and "
                              f"train again{hint}") from None
    if not isinstance(ckpt, dict) or "format_version" not in ckpt:
        raise CheckpointError(f"{path} is not a vocal checkpoint; delete it and train again{hint}")
    if ckpt["format_version"] > FORMAT_VERSION:
        raise CheckpointError(f"{path} has format {ckpt['format_version']}, newer than this vocal "
                              f"understands ({FORMAT_VERSION}); upgrade vocal")
    if kind is not None and ckpt.get("kind") != kind:
        raise CheckpointError(f"{path} holds a '{ckpt.get('kind')}' model, expected '{kind}'")
    return ckpt


def _first_sentence(e: Exception) -> str:
    """'Type: first sentence' of an exception whose text may run to many lines."""
    why = str(e).strip().splitlines()[0].split(". ")[0][:160] if str(e).strip() else ""
    return type(e).__name__ + (f": {why}" if why else "")


def config_differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Human-readable ``key: old -> new`` lines between two nested dicts."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new)):
            key = f"{prefix}.{k}" if prefix else str(k)
            if k not in old or k not in new:
                out.append(f"{key}: {old.get(k, '(absent)')!r} -> {new.get(k, '(absent)')!r}")
            else:
                out.extend(config_differences(old[k], new[k], key))
        return out
    if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)):
        old, new = list(old), list(new)
    return [] if old == new else [f"{prefix}: {old!r} -> {new!r}"]


def _cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu(v) for v in obj)
    return obj


def _plain(obj: Any) -> Any:
    """Metrics as plain python numbers (numpy scalars are not allowed under weights_only)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (np.generic,)):
        return obj.item()
    if isinstance(obj, torch.Tensor) and obj.numel() == 1:
        return obj.item()
    return obj
