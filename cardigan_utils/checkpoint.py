"""Checkpoints: a torch file of state dicts and plain values, plus a JSON config beside it.

Both are written atomically (to a temporary name, then ``os.replace``) so an interrupted run never
leaves a half-written checkpoint, and loaded with ``weights_only=True`` (no pickled objects).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``.

    Args:
        path: destination (its folder is created).
        text: the content.

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any], *, config: dict[str, Any] | None = None) -> Path:
    """Write ``state`` to ``path`` and, if given, ``config`` to ``path`` with suffix ``.json``.

    Args:
        path: the ``.pt`` file.
        state: state dicts, tensors and plain Python values (weights_only-loadable).
        config: JSON-ready description (model keyword arguments, training parameters).

    Returns:
        ``path``.
    """
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    if config is not None:
        write_text_atomic(path.with_suffix(".json"), json.dumps(config, indent=1))
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike, *, map_location: str = "cpu") -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Args:
        path: the ``.pt`` file.
        map_location: device for the tensors.

    Returns:
        ``(state, config)``; config is ``{}`` when there is no JSON file.

    Raises:
        FileNotFoundError: no such checkpoint.
    """
    import torch

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no checkpoint here; train the model first (its notebook writes it)")
    state = torch.load(path, map_location=map_location, weights_only=True)
    cfg = path.with_suffix(".json")
    return state, (json.loads(cfg.read_text()) if cfg.exists() else {})
