"""Classical augmentation, batched on the training device.

So far: random in-plane affine transforms of label maps (for the shape VAE). Rotation, scaling and
translation are drawn per sample from a ``torch.Generator``; resampling is nearest-neighbour so
labels stay labels. (kornia would do this too; ``F.affine_grid`` + ``grid_sample`` is all it needs.)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_affine_params(
    n: int,
    *,
    rotate_deg: float = 15.0,
    scale: float = 0.1,
    translate: float = 0.05,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Draw ``n`` random 2x3 affine matrices (in ``affine_grid``'s normalised coordinates).

    Args:
        n: batch size.
        rotate_deg: rotations uniform in [-rotate_deg, rotate_deg].
        scale: zoom uniform in [1 - scale, 1 + scale].
        translate: shifts uniform in [-translate, translate] of the half-width.
        generator: a CPU ``torch.Generator`` for reproducibility.
        device: where the matrices go.

    Returns:
        (n, 2, 3) float tensor.
    """
    u = torch.rand(n, 4, generator=generator) * 2 - 1
    angle = u[:, 0] * math.radians(rotate_deg)
    zoom = 1 + u[:, 1] * scale
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, u[:, 2] * translate], 1), torch.stack([sin, cos, u[:, 3] * translate], 1)], 1)
    return theta.to(device)


def affine_labels(labels: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Warp (B, H, W) integer label maps by affine matrices, nearest-neighbour, background outside.

    Args:
        labels: (B, H, W) integer tensor.
        theta: (B, 2, 3) matrices from :func:`random_affine_params`.

    Returns:
        (B, H, W) tensor of the same dtype.
    """
    x = labels[:, None].float()
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)[:, 0].to(labels.dtype)
