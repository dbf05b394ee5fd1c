"""Classical augmentation, batched on the training device.

Random in-plane affine transforms of label maps (for the shape VAE), and the classical augmentation
of image + label batches for the segmenter (:func:`augment_batch`). Rotation, scaling and
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


def _warp(images: torch.Tensor, labels: torch.Tensor, grid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Resample images (bilinear, border) and labels (nearest, background outside) on one grid."""
    images = F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="border", align_corners=False)
    labels = F.grid_sample(labels[:, None].float(), grid.to(torch.float32), mode="nearest", padding_mode="zeros",
                           align_corners=False)[:, 0].to(labels.dtype)
    return images, labels


def _smooth_field(n: int, channels: int, size: tuple[int, int], *, control: int, generator, device) -> torch.Tensor:
    """Random values on a coarse ``control`` x ``control`` grid, upsampled bicubically: a smooth field in about [-1, 1]."""
    coarse = torch.rand(n, channels, control, control, generator=generator) * 2 - 1
    return F.interpolate(coarse.to(device), size=size, mode="bicubic", align_corners=True)


def augment_batch(
    images: torch.Tensor,
    labels: torch.Tensor,
    generator: torch.Generator,
    *,
    modality: str = "mri",
    p: float = 0.5,
    flips: bool = True,
    rotate_deg: float = 15.0,
    scale: float = 0.1,
    translate: float = 0.1,
    elastic: float = 0.03,
    gamma: float = 0.3,
    noise: float = 0.03,
    blur: float = 1.0,
    bias: float = 0.3,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Classical augmentation of a batch, on the batch's device; each transform applied per sample with probability ``p``.

    Spatial (image and labels together): flips (MRI only; echo apical views have a fixed
    orientation), rotation, scaling and shifts, elastic deformation (a smooth random displacement of up to
    ``elastic`` of the half-width). Intensity (image only): gamma, Gaussian blur, multiplicative
    bias field, Gaussian noise; the image is clipped back to [0, 1].

    The signature fits ``train_segmenter(augment=...)``: pass
    ``functools.partial(augment_batch, modality="mri")``. A magnitude of 0 switches a transform off.

    Args:
        images: (B, 1, H, W) images in [0, 1].
        labels: (B, H, W) integer label maps.
        generator: a CPU ``torch.Generator`` (all randomness comes from it).
        modality: ``"mri"`` or ``"echo"`` (no flips for echo).
        p: probability of each transform per sample.
        flips: allow left-right / up-down flips (MRI).
        rotate_deg: rotations uniform in [-rotate_deg, rotate_deg].
        scale: zoom uniform in [1 - scale, 1 + scale].
        translate: shifts uniform in [-translate, translate] of the half-width (the slice cache
            centres every heart; new images are cut around a centre the network finds itself).
        elastic: displacement amplitude, as a fraction of the half-width.
        gamma: log-gamma uniform in [-gamma, gamma].
        noise: noise standard deviation up to this.
        blur: Gaussian blur sigma up to this (pixels).
        bias: log of the bias field up to +-bias.

    Returns:
        ``(images, labels)`` augmented, same shapes and dtypes.
    """
    if modality not in ("mri", "echo"):
        raise ValueError(f"modality must be 'mri' or 'echo', got {modality!r}")
    n, _, h, w = images.shape
    device = images.device

    def chosen() -> torch.Tensor:
        return (torch.rand(n, generator=generator) < p).to(device)

    if flips and modality == "mri":
        for dim in (-1, -2):
            pick = chosen()
            images = torch.where(pick[:, None, None, None], images.flip(dim), images)
            labels = torch.where(pick[:, None, None], labels.flip(dim), labels)
    theta = random_affine_params(n, rotate_deg=rotate_deg, scale=scale, translate=translate, generator=generator,
                                 device=device)
    theta = torch.where(chosen()[:, None, None], theta, torch.eye(2, 3, device=device).expand(n, 2, 3))
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
    if elastic > 0:
        field = _smooth_field(n, 2, (h, w), control=5, generator=generator, device=device) * elastic
        grid = grid + (field * chosen()[:, None, None, None]).permute(0, 2, 3, 1)
    images, labels = _warp(images, labels, grid)
    if gamma > 0:
        g = torch.exp((torch.rand(n, generator=generator) * 2 - 1) * gamma).to(device)
        images = torch.where(chosen()[:, None, None, None], images.clamp(0, 1) ** g[:, None, None, None], images)
    if blur > 0:
        sigma = (torch.rand(n, generator=generator) * blur).clamp(min=1e-3).to(device)
        radius = max(1, int(round(3 * blur)))
        x = torch.arange(-radius, radius + 1, device=device, dtype=images.dtype)
        kernel = torch.exp(-(x[None] ** 2) / (2 * sigma[:, None] ** 2))
        kernel = kernel / kernel.sum(1, keepdim=True)  # (n, k): one 1-D kernel per sample, separable
        padded = F.pad(images, (radius, radius, radius, radius), mode="replicate")
        rows = F.conv2d(padded.transpose(0, 1), kernel[:, None, None, :], groups=n)
        blurred = F.conv2d(rows, kernel[:, None, :, None], groups=n).transpose(0, 1)
        images = torch.where(chosen()[:, None, None, None], blurred, images)
    if bias > 0:
        field = torch.exp(_smooth_field(n, 1, (h, w), control=3, generator=generator, device=device) * bias)
        images = torch.where(chosen()[:, None, None, None], images * field, images)
    if noise > 0:
        sd = (torch.rand(n, generator=generator) * noise).to(device)
        eps = torch.randn(images.shape, generator=generator).to(device)
        images = torch.where(chosen()[:, None, None, None], images + eps * sd[:, None, None, None], images)
    return images.clamp(0, 1), labels
