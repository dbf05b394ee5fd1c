"""The shape VAE's latent space: encode a cache, principal directions, interpolation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..metrics import per_class_dice


@dataclass
class LatentCodes:
    """Posterior means of a set of slices and the slices' table.

    Attributes:
        mu: (N, latent_dim) array.
        slices: the matching rows of the cache's ``slices`` table.
    """

    mu: np.ndarray
    slices: pd.DataFrame


@torch.no_grad()
def encode_cache(model, cache, *, split: str | None = "train", batch_size: int = 256) -> LatentCodes:
    """Encode the label maps of a cache split to their posterior means.

    Args:
        model: a :class:`~cardigan_utils.networks.vae.ShapeVAE`.
        cache: a slice cache.
        split: which split (None: all).
        batch_size: encoding batch.

    Returns:
        :class:`LatentCodes`.
    """
    device = next(model.parameters()).device
    idx = cache.indices(split)
    labels = torch.from_numpy(np.ascontiguousarray(cache.labels[idx]))
    was_training = model.training
    model.eval()
    mu = torch.cat([model.encode(chunk.to(device))[0].cpu() for chunk in labels.split(batch_size)])
    model.train(was_training)
    return LatentCodes(mu.numpy(), cache.slices.iloc[idx].reset_index(drop=True))


def principal_directions(mu: np.ndarray, *, k: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCA of latent codes (by SVD).

    Args:
        mu: (N, D) codes.
        k: how many directions.

    Returns:
        ``(mean (D,), directions (k, D) unit vectors, std (k,) spread of the codes along each)``.
    """
    mean = mu.mean(axis=0)
    _, s, vt = np.linalg.svd(mu - mean, full_matrices=False)
    std = s[:k] / np.sqrt(max(len(mu) - 1, 1))
    return mean, vt[:k], std


def project(mu: np.ndarray, mean: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Coordinates of codes along principal directions.

    Args:
        mu: (N, D) codes.
        mean: (D,) mean.
        directions: (k, D) unit vectors.

    Returns:
        (N, k) coordinates.
    """
    return (mu - mean) @ directions.T


def interpolate(z0: np.ndarray, z1: np.ndarray, *, steps: int = 8) -> np.ndarray:
    """Linear interpolation between two latent codes, both ends included.

    Args:
        z0: (D,) start.
        z1: (D,) end.
        steps: number of codes.

    Returns:
        (steps, D) codes.
    """
    t = np.linspace(0.0, 1.0, steps)[:, None]
    return (1 - t) * z0[None] + t * z1[None]


@torch.no_grad()
def reconstruct(model, labels: np.ndarray, *, names: list[str], batch_size: int = 256) -> tuple[np.ndarray, pd.DataFrame]:
    """Reconstruct label maps through the VAE (posterior mean) and score each slice.

    Args:
        model: a shape VAE.
        labels: (N, H, W) label maps.
        names: names of classes 1..3.
        batch_size: batch.

    Returns:
        ``(reconstructions (N, H, W) uint8, per-slice Dice table with one column per class)``.
    """
    device = next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(labels))
    was_training = model.training
    model.eval()
    recon = torch.cat([model.decode_labels(model.encode(c.to(device))[0]).cpu() for c in x.split(batch_size)])
    model.train(was_training)
    rows = [per_class_dice(recon[i : i + 1], x[i : i + 1], num_classes=4).numpy() for i in range(len(x))]
    return recon.numpy(), pd.DataFrame(rows, columns=names)
