"""Classical and domain-randomising augmentation, batched on the training device.

Random in-plane affine transforms of label maps (for the shape VAE), the classical augmentation
of image + label batches for the segmenter (:func:`augment_batch`), and a strong one that also
randomises what a scanner changes: tissue contrast, intensity curves, resolution, noise
(:func:`strong_augment_batch`). Everything random is drawn per sample from one ``torch.Generator``;
labels are resampled nearest-neighbour so they stay labels. (kornia would do the geometry too;
``F.affine_grid`` + ``grid_sample`` is all it needs.)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .labels import NUM_CLASSES, one_hot


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


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor, *, radius: int) -> torch.Tensor:
    """Blur each sample of a batch with its own Gaussian (separable, replicate padding), every channel alike.

    Args:
        images: (B, C, H, W) float tensor.
        sigma: (B,) standard deviations in pixels (> 0), on the images' device.
        radius: kernel half-width in pixels (about 3 sigma of the largest).

    Returns:
        (B, C, H, W) blurred tensor.
    """
    n, c, h, w = images.shape
    x = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    kernel = torch.exp(-(x[None] ** 2) / (2 * sigma[:, None].to(images.dtype) ** 2))
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (B*C, k): one 1-D kernel per map
    padded = F.pad(images.reshape(1, n * c, h, w), (radius, radius, radius, radius), mode="replicate")
    rows = F.conv2d(padded, kernel[:, None, None, :], groups=n * c)
    return F.conv2d(rows, kernel[:, None, :, None], groups=n * c).reshape(n, c, h, w)


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
        blurred = gaussian_blur(images, sigma, radius=max(1, int(round(3 * blur))))
        images = torch.where(chosen()[:, None, None, None], blurred, images)
    if bias > 0:
        field = torch.exp(_smooth_field(n, 1, (h, w), control=3, generator=generator, device=device) * bias)
        images = torch.where(chosen()[:, None, None, None], images * field, images)
    if noise > 0:
        sd = (torch.rand(n, generator=generator) * noise).to(device)
        eps = torch.randn(images.shape, generator=generator).to(device)
        images = torch.where(chosen()[:, None, None, None], images + eps * sd[:, None, None, None], images)
    return images.clamp(0, 1), labels


# Strong (domain-randomising) augmentation. MONAI has per-sample versions of several of these pieces
# (RandHistogramShift: a monotone random curve; RandIntensityRemap: a non-monotone one; RandBiasField,
# RandGaussianNoise, RandGaussianSharpen, RandSimulateLowResolution) but nothing that remaps each labelled
# tissue or a GIN network. They are also written per sample and draw from their own NumPy RandomState: a
# batch on the GPU would go through a Python loop and back to the CPU, and the study's runs would depend
# on a second random stream. Here every transform is one batched torch operation on the batch's device,
# and every random number comes from the training loop's one CPU torch.Generator (as augment_batch).
# Speed is not the reason, but it does not lose: a (32, 1, 64, 64) batch on one CPU thread took ~100 ms
# through six of MONAI's transforms sample by sample (no geometry), ~50 ms through strong_augment_batch
# (geometry included), ~20 ms through augment_batch.

_GIN_LAYERS = 4
"""Convolutions of the random GIN network (Ouyang et al. 2022 use 4)."""

_GIN_WIDTH = 2
"""Channels between its layers (their ``interm_channel``)."""


def _low_resolution(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Each sample seen at 1/``factor`` of its resolution (anti-aliased, sampled on a coarser lattice), then
    resampled back bilinearly: two ``grid_sample`` calls, so every sample has its own factor in one batch.

    Args:
        images: (B, 1, H, W) images.
        factor: (B,) CPU tensor of factors >= 1 (1: unchanged).

    Returns:
        (B, 1, H, W) images.
    """
    n = images.shape[0]
    device, dtype = images.device, images.dtype
    sigma = ((factor - 1) / 2).clamp(min=1e-3)  # the anti-aliasing blur of a downsampling by ``factor``
    blurred = gaussian_blur(images, sigma.to(device), radius=max(1, math.ceil(3 * float(sigma.max()))))
    eye = torch.eye(2).expand(n, 2, 2)
    # In affine_grid's coordinates (align_corners=False) pixel j of the coarse lattice sits at
    # factor * x + factor - 1 of the image, and a pixel of the image at x / factor + 1 / factor - 1 of it.
    down = torch.cat([eye * factor[:, None, None], (factor - 1)[:, None, None].expand(n, 2, 1)], 2)
    up = torch.cat([eye / factor[:, None, None], (1 / factor - 1)[:, None, None].expand(n, 2, 1)], 2)
    size = list(images.shape)
    coarse = F.grid_sample(blurred, F.affine_grid(down.to(device, dtype), size, align_corners=False), mode="bilinear",
                           padding_mode="border", align_corners=False)
    return F.grid_sample(coarse, F.affine_grid(up.to(device, dtype), size, align_corners=False), mode="bilinear",
                         padding_mode="border", align_corners=False)


def _intensity_curve(images: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Map each sample's intensities in [0, 1] through its own piecewise-linear curve.

    Args:
        images: (B, 1, H, W) images in [0, 1].
        values: (B, K) the curve's values at K equally spaced knots 0, 1/(K-1), ..., 1.

    Returns:
        (B, 1, H, W) images.
    """
    n, k = values.shape
    position = images.clamp(0, 1).reshape(n, -1) * (k - 1)
    left = position.floor().clamp(max=k - 2).long()
    low, high = values.gather(1, left), values.gather(1, left + 1)
    return (low + (position - left) * (high - low)).reshape(images.shape)


def _gin(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random shallow convolutional network per sample (GIN: global intensity non-linear augmentation,
    Ouyang et al., IEEE TMI 2022): ``_GIN_LAYERS`` convolutions of random weights and biases, kernel sizes 1
    or 3 drawn per layer, leaky ReLU between them; the output rescaled to [0, 1] per sample.

    Args:
        images: (B, 1, H, W) images.
        generator: the CPU generator of the weights.

    Returns:
        (B, 1, H, W) images in [0, 1].
    """
    n, _, h, w = images.shape
    x = images.reshape(1, n, h, w)  # the batch as groups: every sample has its own network
    channels = [1] + [_GIN_WIDTH] * (_GIN_LAYERS - 1) + [1]
    for layer, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
        k = int(torch.randint(0, 2, (1,), generator=generator)) * 2 + 1
        weight = torch.randn(n * c_out, c_in, k, k, generator=generator).to(images.device, images.dtype)
        bias = torch.randn(n * c_out, generator=generator).to(images.device, images.dtype)
        x = F.conv2d(F.pad(x, (k // 2,) * 4, mode="replicate"), weight, bias, groups=n)
        if layer < _GIN_LAYERS - 1:
            x = F.leaky_relu(x, 0.2)
    x = x.reshape(n, 1, h, w)
    low = x.amin((1, 2, 3), keepdim=True)
    return (x - low) / (x.amax((1, 2, 3), keepdim=True) - low).clamp(min=1e-6)


def strong_augment_batch(
    images: torch.Tensor,
    labels: torch.Tensor,
    generator: torch.Generator,
    *,
    modality: str = "mri",
    p: float = 0.5,
    strength: float = 1.0,
    flips: bool = True,
    rotate_deg: float = 15.0,
    scale: float = 0.1,
    translate: float = 0.1,
    elastic: float = 0.03,
    tissue: float = 0.4,
    tissue_sigma: float = 1.0,
    curve: float = 0.8,
    monotone: float = 0.7,
    curve_knots: int = 5,
    gin: float = 0.8,
    bias: float = 0.6,
    low_res: float = 3.0,
    blur: float = 1.5,
    sharpen: float = 1.5,
    noise: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Domain-randomising augmentation of a batch, on the batch's device: an image of any scanner's look.

    What single-source domain generalisation does in the literature (random intensity curves as in
    SLAug, Su et al. AAAI 2023, and BigAug, Zhang et al. IEEE TMI 2020; per-tissue location-scale
    remapping as SLAug's class-level augmentation; GIN, Ouyang et al. IEEE TMI 2022), so that a
    segmenter cannot lean on the training scanner's contrast, resolution or noise. In order, each
    applied per sample with probability ``p``:

    1. the classical geometry of :func:`augment_batch` (flips for MRI, affine, elastic), image and
       labels together, with the same magnitudes, so that only the intensity side differs between
       the ``+aug`` and ``+strong-aug`` regimes;
    2. per-tissue contrast: each label's pixels remapped by its own gain (log-uniform in
       ``±tissue``) and offset (``±tissue / 2``), through label masks smoothed by a Gaussian of
       ``tissue_sigma`` pixels, so that no hard edge is drawn where there was none;
    3. a random intensity curve: piecewise linear through ``curve_knots`` knots, random values,
       sorted (monotone) with probability ``monotone``, else in any order (tissues change rank as
       between sequences); blended with the identity by a weight uniform in [0, ``curve``];
    4. GIN: a random 4-layer convolutional network of the image, blended with it by a weight
       uniform in [0, ``gin``];
    5. a multiplicative bias field (log amplitude up to ``±bias``);
    6. lower resolution: downsampled by a factor uniform in [1, ``low_res``], then back;
    7. blur or sharpen: ``x + a (x - G_sigma x)``, sigma up to ``blur`` pixels, ``a`` uniform in
       [-1, ``sharpen``] (-1 is the blurred image);
    8. Gaussian noise of standard deviation up to ``noise``.

    The image is clipped to [0, 1]. ``strength`` scales every intensity magnitude (2 to 7) at once:
    0 leaves the geometry only, 1 the defaults; a magnitude of 0 switches its transform off. The
    signature fits ``train_segmenter(augment=...)``: ``functools.partial(strong_augment_batch, modality="mri")``.

    Args:
        images: (B, 1, H, W) images in [0, 1].
        labels: (B, H, W) integer label maps (classes 0 to ``NUM_CLASSES - 1``).
        generator: a CPU ``torch.Generator`` (all randomness comes from it).
        modality: ``"mri"`` or ``"echo"`` (no flips for echo).
        p: probability of each transform per sample.
        strength: multiplier of the intensity magnitudes (``>= 0``).
        flips: allow left-right / up-down flips (MRI).
        rotate_deg: rotations uniform in [-rotate_deg, rotate_deg].
        scale: zoom uniform in [1 - scale, 1 + scale].
        translate: shifts uniform in [-translate, translate] of the half-width.
        elastic: elastic displacement amplitude, as a fraction of the half-width.
        tissue: per-tissue log-gain up to ``±tissue`` and offset up to ``±tissue / 2``.
        tissue_sigma: smoothing of the tissue masks, in pixels.
        curve: largest weight of the random curve against the identity (1: the curve alone).
        monotone: probability that a curve is monotone increasing.
        curve_knots: knots of the curve (>= 2).
        gin: largest weight of the GIN network's image against the input (1: the network alone).
        bias: log of the bias field up to ``±bias``.
        low_res: largest downsampling factor (1: off).
        blur: largest sigma of the blur / sharpen kernel, in pixels.
        sharpen: largest unsharp-mask amount.
        noise: noise standard deviation up to this.

    Returns:
        ``(images, labels)`` augmented, same shapes and dtypes.

    Raises:
        ValueError: an unknown modality, a negative ``strength``, ``curve_knots < 2``, ``low_res < 1``.
    """
    if strength < 0:
        raise ValueError(f"strength must be >= 0, got {strength}")
    if curve_knots < 2:
        raise ValueError(f"curve_knots must be >= 2, got {curve_knots}")
    if low_res < 1:
        raise ValueError(f"low_res is a downsampling factor >= 1 (1: off), got {low_res}")
    images, labels = augment_batch(images, labels, generator, modality=modality, p=p, flips=flips,
                                   rotate_deg=rotate_deg, scale=scale, translate=translate, elastic=elastic,
                                   gamma=0.0, noise=0.0, blur=0.0, bias=0.0)
    n, _, h, w = images.shape
    device, dtype = images.device, images.dtype

    def chosen() -> torch.Tensor:
        return (torch.rand(n, generator=generator) < p).to(device)[:, None, None, None]

    def uniform(*shape: int, low: float, high: float) -> torch.Tensor:
        return torch.rand(*shape, generator=generator) * (high - low) + low

    if tissue * strength > 0:
        log_gain = uniform(n, NUM_CLASSES, low=-tissue * strength, high=tissue * strength)
        offset = uniform(n, NUM_CLASSES, low=-tissue * strength / 2, high=tissue * strength / 2)
        masks = one_hot(labels, dtype=dtype)
        if tissue_sigma > 0:
            masks = gaussian_blur(masks, torch.full((n,), float(tissue_sigma), device=device),
                                  radius=max(1, math.ceil(3 * tissue_sigma)))
            masks = masks / masks.sum(1, keepdim=True).clamp(min=1e-6)
        gain = (masks * log_gain.exp().to(device, dtype)[:, :, None, None]).sum(1, keepdim=True)
        shift = (masks * offset.to(device, dtype)[:, :, None, None]).sum(1, keepdim=True)
        images = torch.where(chosen(), (images * gain + shift).clamp(0, 1), images)
    if curve * strength > 0:
        values = torch.rand(n, curve_knots, generator=generator)
        values = torch.where(torch.rand(n, 1, generator=generator) < monotone, values.sort(1).values, values)
        weight = uniform(n, 1, low=0.0, high=min(1.0, curve * strength))
        values = (1 - weight) * torch.linspace(0, 1, curve_knots) + weight * values
        images = torch.where(chosen(), _intensity_curve(images, values.to(device, dtype)), images)
    if gin * strength > 0:
        weight = uniform(n, low=0.0, high=min(1.0, gin * strength)).to(device, dtype)[:, None, None, None]
        mixed = weight * _gin(images, generator) + (1 - weight) * images
        images = torch.where(chosen(), mixed, images)
    if bias * strength > 0:
        field = torch.exp(_smooth_field(n, 1, (h, w), control=4, generator=generator, device=device) * bias * strength)
        images = torch.where(chosen(), images * field.to(dtype), images)
    if (low_res - 1) * strength > 0:
        factor = 1 + torch.rand(n, generator=generator) * (low_res - 1) * strength
        images = torch.where(chosen(), _low_resolution(images, factor), images)
    if blur > 0 and strength > 0:
        sigma = uniform(n, low=0.5, high=max(0.5, blur)).to(device)
        amount = uniform(n, low=-1.0, high=sharpen).mul(strength).clamp(min=-1.0).to(device, dtype)[:, None, None, None]
        radius = max(1, math.ceil(3 * max(0.5, blur)))
        images = torch.where(chosen(), images + amount * (images - gaussian_blur(images, sigma, radius=radius)), images)
    if noise * strength > 0:
        sd = (torch.rand(n, generator=generator) * noise * strength).to(device, dtype)
        eps = torch.randn(images.shape, generator=generator).to(device, dtype)
        images = torch.where(chosen(), images + eps * sd[:, None, None, None], images)
    return images.clamp(0, 1), labels
