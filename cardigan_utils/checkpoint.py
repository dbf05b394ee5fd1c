"""Checkpoints: a torch file of state dicts and plain values, plus a JSON config beside it.

Both are written atomically (to a temporary name, then ``os.replace``) so an interrupted run never
leaves a half-written checkpoint, and loaded with ``weights_only=True`` (no pickled objects).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from .runs import atomic_path, write_text_atomic


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any], *, config: dict[str, Any] | None = None) -> Path:
    """Write ``state`` to ``path`` and, if given, ``config`` to ``path`` with suffix ``.json``.

    Args:
        path: the ``.pt`` file.
        state: state dicts, tensors and plain Python values (weights_only-loadable).
        config: JSON-ready description (model keyword arguments, training parameters).

    Returns:
        ``path``.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
        if config is not None:
            write_text_atomic(path.with_suffix(".json"), json.dumps(config, indent=1))
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
    config = read_config(path)
    return torch.load(path, map_location=map_location, weights_only=True), config


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON config beside a checkpoint, without loading its weights.

    Args:
        path: the ``.pt`` file.

    Returns:
        The config (``{}`` when there is no JSON file).

    Raises:
        FileNotFoundError: no such checkpoint.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no checkpoint here; train the model first (its notebook writes it)")
    cfg = path.with_suffix(".json")
    return json.loads(cfg.read_text()) if cfg.exists() else {}
