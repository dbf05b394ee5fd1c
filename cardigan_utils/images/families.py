"""The generator families the kit knows, and loading a trained generator of any of them."""

from __future__ import annotations

from pathlib import Path

import torch

from ..checkpoint import read_config
from . import spade
from .contract import GeneratorFamily, ImageGenerator

FAMILIES: dict[str, GeneratorFamily] = {family.name: family for family in (spade.FAMILY,)}
"""Family name -> family. A new family adds its ``FAMILY`` to this tuple."""


def get_family(name: str) -> GeneratorFamily:
    """The family of that name.

    Args:
        name: a family name (``"spade"``).

    Returns:
        The :class:`~cardigan_utils.images.contract.GeneratorFamily`.

    Raises:
        ValueError: an unknown name, listing the known ones.
    """
    if name not in FAMILIES:
        raise ValueError(f"unknown generator family {name!r}; the kit knows {sorted(FAMILIES)}")
    return FAMILIES[name]


def load_generator(path: str | Path, *, device: str | torch.device | None = None) -> ImageGenerator:
    """Load a trained generator of whichever family wrote the checkpoint.

    Args:
        path: the checkpoint (``spade.pt``), with its ``.json`` config beside it.
        device: where to put it (default: the best available).

    Returns:
        An :class:`~cardigan_utils.images.contract.ImageGenerator`.

    Raises:
        CheckpointError: ``path`` is not a generator checkpoint the kit wrote (the family's loader
            checks the kind: a VAE checkpoint is refused in one line).
        ValueError: a family the kit does not know.
    """
    # checkpoints from before the contract carry no family: they are all SPADE (a checkpoint of
    # another kind without one, a VAE's say, goes to SPADE's loader too, which refuses it by its kind)
    family = read_config(path).get("family") or spade.FAMILY_NAME
    return get_family(family).load(path, device=device)
