"""Judging a synthetic set like the field judges image generators, without downloaded weights.

FID and KID are usually computed in the features of an ImageNet Inception network; no such weights
can be downloaded here, and ImageNet features say little about cardiac MR or echo anyway. The kit's
features come from a segmentation U-Net it trains itself, on the run's **real** training slices
(:func:`feature_network`): a network that has learnt what matters in these images. Its numbers
are comparable only with numbers from the same feature network, so every distance is shown next to
the same distance between two real sets (the real training and test patients).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..config import STAGE_DEFAULTS
from ..metrics import (appearance_table, copy_check, frechet_distance, image_features, kernel_distance, ms_ssim_diversity,
                       spread_comparison)
from ..segmentation.train import data_config, load_segmenter, train_segmenter

_DEFAULTS = STAGE_DEFAULTS["generate"]

FEATURE_CHANNELS = (16, 32, 64, 128)
"""Widths of the feature U-Net (a small one: it only needs to see what tissue looks like)."""


def feature_network_path(run_dir: str | Path, cache) -> Path:
    """Where :func:`feature_network` keeps the feature U-Net of a cache's dataset and size.

    Args:
        run_dir: the run directory.
        cache: the real slice cache.

    Returns:
        ``run_dir/features_<dataset>_<size>.pt``.
    """
    return Path(run_dir) / f"features_{cache.manifest['dataset']}_{int(cache.manifest['image_size'])}.pt"


def feature_network(run_dir: str | Path, cache, *, steps: int = _DEFAULTS["feature_steps"], batch_size: int = 32,
                    seed: int = 0, device: str | torch.device | None = None, progress_bar: bool = True) -> torch.nn.Module:
    """The U-Net whose activations are the kit's image features, trained once per run and dataset.

    A segmentation U-Net (:data:`FEATURE_CHANNELS`) trained for ``steps`` batches on the cache's
    real training slices (validated on its val split), kept at :func:`feature_network_path` and
    loaded from there on later calls (an interrupted training resumes).

    Args:
        run_dir: the run directory.
        cache: the real slice cache (notebook 01's).
        steps: training batches (two epochs of ``steps // 2``).
        batch_size: batch size.
        seed: seed of the weights and batches.
        device: where to train and run it (default: the best available).
        progress_bar: a tqdm bar while training.

    Returns:
        The U-Net in eval mode.
    """
    path = feature_network_path(run_dir, cache)
    if not path.exists():
        train, val = cache.indices("train"), cache.indices("val")
        if len(val) == 0:
            val = train
        train_segmenter([(cache.images[train], cache.labels[train])], val=(cache.images[val], cache.labels[val]),
                        run_dir=path.parent, name=path.stem, channels=FEATURE_CHANNELS, norm="batch", max_epochs=2,
                        steps_per_epoch=max(1, steps // 2), batch_size=batch_size, data=data_config(cache),
                        device=device, seed=seed, progress_bar=progress_bar)
    model, _ = load_segmenter(path, device=device)
    return model


def judge_synthetic(images: np.ndarray, cache, *, model: torch.nn.Module, seed: int = 0,
                    max_images: int = 2000) -> tuple[pd.DataFrame, object]:
    """FID, KID and MS-SSIM diversity of a synthetic set, each next to real against real; a fair copy check.

    The distances compare each set with the real **test** slices: the synthetic images, and the
    real **training** slices as the yardstick (two sets of real patients). The Fréchet distance is
    taken on the features projected to ``dim`` principal axes, ``dim`` at most 64 and below half
    the smallest set (a covariance needs more images than dimensions); KID needs no such cut.

    Args:
        images: (N, S, S) synthetic images in [0, 1].
        cache: the real slice cache they are judged against (train and test splits).
        model: the feature U-Net (:func:`feature_network`).
        seed: seed of the subsets (KID, MS-SSIM pairs).
        max_images: at most this many images per set (the first ones).

    Returns:
        ``(table, copies)``: a DataFrame indexed by measure (``FID``, ``KID``, ``MS-SSIM``), columns
        ``synthetic`` and ``real train`` (and ``feature_dim`` in ``table.attrs``), and the
        :class:`~cardigan_utils.metrics.fidelity.CopyCheck` of the synthetic images against the
        real training images, real test images as the yardstick.
    """
    train = np.ascontiguousarray(cache.images[cache.indices("train")][:max_images])
    test = np.ascontiguousarray(cache.images[cache.indices("test")][:max_images])
    synth = np.ascontiguousarray(np.asarray(images)[:max_images])
    if len(test) < 4 or len(train) < 4 or len(synth) < 4:
        raise ValueError(f"too few images to judge: {len(synth)} synthetic, {len(train)} real train, {len(test)} real test")
    feats = {name: image_features(model, x) for name, x in (("synthetic", synth), ("real train", train), ("real test", test))}
    dim = max(2, min(64, min(len(f) for f in feats.values()) // 2))
    subset = min(1000, min(len(f) for f in feats.values()))
    table = pd.DataFrame({
        name: {
            "FID": frechet_distance(feats[name], feats["real test"], dim=dim),
            "KID": kernel_distance(feats[name], feats["real test"], subset_size=subset, n_subsets=50, seed=seed),
            "MS-SSIM": ms_ssim_diversity(x, seed=seed),
        }
        for name, x in (("synthetic", synth), ("real train", train))
    })
    table.attrs["feature_dim"] = dim
    return table, copy_check(synth[:500], train, test)


def extrapolation_spread(generator, labels: np.ndarray, *, real_table: pd.DataFrame, names, seed: int = 0,
                         factors=(1.0, 1.5, 2.0, 3.0), batch_size: int = 64) -> tuple[pd.DataFrame, dict[float, np.ndarray]]:
    """How far style extrapolation widens the generated images' appearance (issue 23).

    The same label maps are rendered with the same style draws, moved ``factor`` times farther
    from the centre of the real styles (``generator.sample_styles(extrapolation=factor)``), and the
    spread across images of each appearance figure is compared with the real images'.

    Args:
        generator: a trained :class:`~cardigan_utils.images.contract.ImageGenerator` with style codes.
        labels: (N, S, S) label maps (the same for every factor).
        real_table: :func:`~cardigan_utils.metrics.appearance_table` of the real images (the yardstick).
        names: class names, in label order (for the appearance figures).
        seed: seed of the style draws.
        factors: the extrapolation factors.
        batch_size: images per forward pass.

    Returns:
        ``(table, images)``: a DataFrame indexed by ``extrapolation``, one column per appearance
        figure (generated spread / real spread, as :func:`~cardigan_utils.metrics.spread_comparison`),
        and factor -> (N, S, S) images.
    """
    if not generator.style_dim:
        raise ValueError("this generator has no style codes (z_dim=0): there is no style to extrapolate")
    labels = np.ascontiguousarray(labels)
    images, rows = {}, {}
    for factor in factors:
        styles = generator.sample_styles(len(labels), seed=seed, extrapolation=factor)
        images[factor] = generator.render(labels, styles=styles, batch_size=batch_size)
        rows[factor] = spread_comparison(real_table, appearance_table(images[factor], labels, names=names))["ratio"]
    table = pd.DataFrame(rows).T.rename_axis("extrapolation")
    return table, images
