"""Stage 3: label map -> image generators, behind one contract (see :mod:`.contract`).

:func:`load_generator` loads a trained generator of any family; SPADE's own pieces (build, step,
train, render) are in :mod:`cardigan_utils.images.spade`.
"""

from .contract import GeneratorFamily, ImageGenerator
from .families import FAMILIES, get_family, load_generator
from .spade import SpadeRenderer, build_spade, fit_style_density, load_spade, render, save_spade, spade_step, train_spade

__all__ = [
    "FAMILIES",
    "GeneratorFamily",
    "ImageGenerator",
    "SpadeRenderer",
    "build_spade",
    "fit_style_density",
    "get_family",
    "load_generator",
    "load_spade",
    "render",
    "save_spade",
    "spade_step",
    "train_spade",
]
