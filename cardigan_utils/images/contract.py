"""Stage 3's generator contract: what the rest of the kit uses of a label-to-image generator.

Notebook 04, ``cardigan generate``, the widgets and the study see a trained generator only as an
:class:`ImageGenerator`, and a generator family only as a :class:`GeneratorFamily`. SPADE is the
first family (:mod:`cardigan_utils.images.spade`); a second one (a label-conditioned diffusion
model, say) plugs in by offering the same: one new module in this folder that defines its
``FAMILY``, and one line in :mod:`cardigan_utils.images.families`.

Every checkpoint a family writes records ``"family": <name>`` in its JSON config, so
:func:`~cardigan_utils.images.families.load_generator` knows which family reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np
import torch


@runtime_checkable
class ImageGenerator(Protocol):
    """A trained generator: label maps in, images out, each image matching its label map pixel for pixel.

    Attributes:
        family: the family's name (``"spade"``).
        config: the JSON config of its checkpoint (``family``, ``model``, ``train``, ``data``).
        image_size: side of the square label maps it takes and images it renders.
        style_dim: size of a style code (0: one image per label map).
    """

    family: str
    config: dict[str, Any]

    @property
    def image_size(self) -> int: ...

    @property
    def style_dim(self) -> int: ...

    def sample_styles(self, n: int, *, seed: int, prior: str = "kde", extrapolation: float = 1.0) -> torch.Tensor | None:
        """``n`` style codes drawn with ``seed`` (None for a generator without styles), from the
        family's own density of real images' styles (``prior="kde"``, its default) or from N(0, I)
        (``"standard"``); a family without a fitted density draws from N(0, I) whatever ``prior``.
        ``extrapolation`` > 1 moves them that many times farther from the centre of the real
        styles (appearances beyond the training scanner's)."""

    def render(self, labels: torch.Tensor | np.ndarray, *, styles: torch.Tensor | None = None,
               batch_size: int = 64) -> np.ndarray:
        """(N, H, W) images in [0, 1] of (N, H, W) integer label maps, one style per map."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Its weights, by name: what a synthetic set records it was made from
        (:func:`~cardigan_utils.runs.state_fingerprint`)."""


@dataclass(frozen=True)
class GeneratorFamily:
    """What a generator family offers the kit.

    Attributes:
        name: recorded in its checkpoints (``"spade"``).
        stage: the section of ``config.STAGE_DEFAULTS`` / ``config.PROFILES`` holding its parameters.
        build: ``build(**model_config)`` -> its networks (untrained, on the CPU).
        step: one training iteration on a batch (the family's own signature).
        train: ``train(cache, *, run_dir, seed, device, progress_bar, **params)`` -> history
            DataFrame; writes ``<run_dir>/<stage>.pt`` (resumable, see :mod:`cardigan_utils.loop`).
        load: ``load(path, *, device)`` -> an :class:`ImageGenerator`.
    """

    name: str
    stage: str
    build: Callable[..., Any]
    step: Callable[..., dict[str, torch.Tensor]]
    train: Callable[..., Any]
    load: Callable[..., ImageGenerator]
