"""Checkpoints: a torch file of state dicts and plain values, plus a JSON config beside it.

Both are written atomically (to a temporary name, then ``os.replace``) so an interrupted run never
leaves a half-written checkpoint, and loaded with ``weights_only=True`` (no pickled objects).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


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
        cfg = path.with_suffix(".json")
        cfg_tmp = cfg.with_name(cfg.name + ".tmp")
        cfg_tmp.write_text(json.dumps(config, indent=1))
        os.replace(cfg_tmp, cfg)
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
