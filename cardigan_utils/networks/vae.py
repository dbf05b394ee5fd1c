"""Shape VAE: a variational autoencoder over one-hot cardiac label maps.

The encoder/decoder are MONAI's ``VarAutoEncoder`` (strided convolutions down to a 4x4 grid, a
linear layer to and from the latent space, transposed convolutions up). This class adds what the
study needs: one-hot input from a label map, logits out, the reparameterisation under our control
(MONAI's eval-mode default returns mu + sigma, neither the mean nor a sample), and sampling of new
shapes from a density fitted to the training codes (a Gaussian, or a kernel density estimate).
"""

from __future__ import annotations

from typing import Sequence

import torch
from monai.networks.nets import VarAutoEncoder
from torch import nn

from ..labels import one_hot
from .density import DENSITY_KINDS, draw_codes, fit_density, fit_gaussian, whiten

DEFAULT_CHANNELS = {64: (32, 64, 128, 256), 128: (16, 32, 64, 128, 256), 256: (16, 32, 64, 128, 256, 256)}
"""Encoder widths per image size: each level halves the size, down to 4x4."""

PRIORS = DENSITY_KINDS
"""What :meth:`ShapeVAE.sample_codes` can draw from (the first is the default)."""

DENSITY_KEYS = ("density_codes", "density_bandwidth")
"""The buffers of the kernel density; a checkpoint from before it lacks them (then "kde" draws from the Gaussian)."""


class ShapeVAE(nn.Module):
    """A VAE over label maps with ``num_classes`` classes.

    Args:
        image_size: side of the square label maps (64, 128 or 256).
        num_classes: number of classes, background included.
        latent_dim: size of the latent space.
        channels: encoder widths, one per stride-2 level (default from ``DEFAULT_CHANNELS``).
        num_res_units: residual units per level (MONAI); 0 for plain convolutions.
    """

    def __init__(
        self,
        *,
        image_size: int = 128,
        num_classes: int = 4,
        latent_dim: int = 32,
        channels: Sequence[int] | None = None,
        num_res_units: int = 0,
    ) -> None:
        super().__init__()
        if image_size not in DEFAULT_CHANNELS and channels is None:
            raise ValueError(f"image_size must be one of {sorted(DEFAULT_CHANNELS)} (or give channels), not {image_size}")
        channels = tuple(channels or DEFAULT_CHANNELS[image_size])
        if image_size % 2 ** len(channels):
            raise ValueError(f"image_size {image_size} is not divisible by 2**{len(channels)}")
        self.config = {
            "image_size": image_size,
            "num_classes": num_classes,
            "latent_dim": latent_dim,
            "channels": list(channels),
            "num_res_units": num_res_units,
        }
        self.num_classes = num_classes
        self.latent_dim = latent_dim
        self.net = VarAutoEncoder(
            spatial_dims=2,
            in_shape=(num_classes, image_size, image_size),
            out_channels=num_classes,
            latent_size=latent_dim,
            channels=channels,
            strides=(2,) * len(channels),
            num_res_units=num_res_units,
            use_sigmoid=False,
        )
        # The sampling distribution. N(0, I) until fit_prior() replaces it by a Gaussian fitted to
        # the training codes (ex-post density estimation, Ghosh et al., ICLR 2020): the posterior
        # codes rarely fill the standard normal, and decoding from its empty regions gives broken
        # shapes. Buffers, so the fitted prior is saved in the state dict with the weights.
        self.register_buffer("prior_mean", torch.zeros(latent_dim))
        self.register_buffer("prior_chol", torch.eye(latent_dim))
        # The kernel density of fit_density(): the training codes themselves (N x latent_dim, a
        # few hundred kB) and the kernel width in whitened units. Empty until fitted; sized to the
        # checkpoint's codes by match_density() before loading.
        self.register_buffer("density_codes", torch.zeros(0, latent_dim))
        self.register_buffer("density_bandwidth", torch.zeros(()))

    def one_hot(self, label: torch.Tensor) -> torch.Tensor:
        """(B, H, W) integer label maps -> (B, C, H, W) float one-hot, in channels-last memory format.

        Channels-last is the layout this VAE has always been trained on; another layout gives the
        same values but rounds the convolutions' sums differently, so results would not repeat.
        """
        return one_hot(label.long(), num_classes=self.num_classes).contiguous(memory_format=torch.channels_last)

    def encode(self, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode label maps.

        Args:
            label: (B, H, W) integer label maps, or (B, C, H, W) one-hot.

        Returns:
            ``(mu, logvar)``, each (B, latent_dim).
        """
        x = self.one_hot(label) if label.dim() == 3 else label
        return self.net.encode_forward(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decode latent codes to class logits (B, C, H, W)."""
        return self.net.decode_forward(z, use_sigmoid=False)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``mu + eps * sigma`` with ``eps ~ N(0, I)`` (drawn from ``generator`` if given)."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + eps * torch.exp(0.5 * logvar)

    def forward(self, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruct: sample z from the posterior in training, use its mean in eval mode.

        Args:
            label: (B, H, W) label maps.

        Returns:
            ``(logits, mu, logvar)``.
        """
        mu, logvar = self.encode(label)
        z = self.reparameterize(mu, logvar) if self.training else mu
        return self.decode(z), mu, logvar

    @torch.no_grad()
    def fit_prior(self, codes: torch.Tensor) -> None:
        """Fit the sampling Gaussian (mean, full covariance) to latent codes.

        Args:
            codes: (N, latent_dim) posterior means of the training label maps.
        """
        mean, chol = fit_gaussian(codes.to(self.prior_mean.device))
        self.prior_mean.copy_(mean)
        self.prior_chol.copy_(chol)

    @torch.no_grad()
    def fit_density(self, codes: torch.Tensor, *, bandwidth: str | float = "cv") -> None:
        """Fit the sampling densities to latent codes: the Gaussian of :meth:`fit_prior` and a KDE.

        The kernel density estimate keeps the codes and draws a code by picking one of them and
        adding Gaussian noise N(0, h^2 Sigma) (Sigma: the codes' covariance, h: :func:`kde_bandwidth`).
        That is an exact draw from the KDE, so no rejection step against it is needed (Painchaud
        et al., TMI 2020, fit a KDE to the codes and sample it by rejection): the draws follow the
        codes where a single Gaussian puts mass between their clusters, where the decoder has
        never learnt a shape.

        Args:
            codes: (N, latent_dim) posterior means of the training label maps (N >= 2).
            bandwidth: ``"cv"`` (:func:`cv_bandwidth`; on a phantom VAE at 128x128 it chose 0.52
                and 55 % of draws were valid, against 51 % for Scott's 0.84 and 48 % for the
                fitted Gaussian), ``"scott"``, ``"silverman"`` or a kernel width in whitened units.
        """
        if codes.dim() != 2 or codes.shape[1] != self.latent_dim or len(codes) < 2:
            raise ValueError(f"codes must be (N >= 2, {self.latent_dim}), not {tuple(codes.shape)}")
        mean, chol, centres, h = fit_density(codes.to(self.prior_mean.device), bandwidth=bandwidth, seed=0)
        self.prior_mean.copy_(mean)
        self.prior_chol.copy_(chol)
        self.density_codes = centres
        self.density_bandwidth.fill_(h)

    def match_density(self, state_dict: dict) -> None:
        """Size the density buffer like the one in ``state_dict``, so that the state dict loads.

        Args:
            state_dict: a state dict of a ShapeVAE (one without the density leaves the model as it is).
        """
        codes = state_dict.get("density_codes")
        if codes is not None and codes.dim() == 2:
            self.density_codes = torch.zeros(codes.shape, dtype=self.density_codes.dtype, device=self.density_codes.device)

    @property
    def has_density(self) -> bool:
        """Whether :meth:`fit_density` gave this model a kernel density (else ``"kde"`` means ``"fitted"``)."""
        return len(self.density_codes) > 0

    def whiten(self, z: torch.Tensor) -> torch.Tensor:
        """Codes in the whitened space of the fitted Gaussian: ``L^-1 (z - mean)``, covariance I.

        Args:
            z: (N, latent_dim) codes.

        Returns:
            (N, latent_dim) whitened codes (the codes themselves while no prior is fitted).
        """
        return whiten(z, self.prior_mean, self.prior_chol)

    @torch.no_grad()
    def sample_codes(self, n: int, *, generator: torch.Generator | None = None, prior: str = "kde") -> torch.Tensor:
        """Draw latent codes.

        Args:
            n: how many.
            generator: a seeded ``torch.Generator`` (on the model's device).
            prior: ``"kde"`` (the kernel density of :meth:`fit_density`; where the model has none,
                as in checkpoints from before it, the fitted Gaussian), ``"fitted"`` (the Gaussian of
                :meth:`fit_prior`; N(0, I) if never fitted) or ``"standard"`` (N(0, I)).

        Returns:
            (n, latent_dim) codes.
        """
        return draw_codes(n, mean=self.prior_mean, chol=self.prior_chol, codes=self.density_codes,
                          bandwidth=self.density_bandwidth, kind=prior, generator=generator)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, prior: str = "kde", batch_size: int = 512) -> torch.Tensor:
        """Draw ``n`` new label maps (see :meth:`sample_codes` for ``prior``).

        Unfiltered: :func:`cardigan_utils.shapes.sample_valid_shapes` returns only shapes that pass
        the anatomical checks.

        Args:
            n: how many.
            generator: a seeded ``torch.Generator`` for reproducible samples (on the model's device).
            prior: ``"kde"``, ``"fitted"`` or ``"standard"``.
            batch_size: decoding batch.

        Returns:
            (n, H, W) uint8 label maps on the model's device.
        """
        return self.decode_labels(self.sample_codes(n, generator=generator, prior=prior), batch_size=batch_size)

    @torch.no_grad()
    def decode_labels(self, z: torch.Tensor, *, batch_size: int = 512, autocast: bool = False) -> torch.Tensor:
        """Decode latent codes to label maps (argmax of the logits), in batches.

        Args:
            z: (N, latent_dim) codes.
            batch_size: decoding batch.
            autocast: decode under bf16 autocast (about twice as fast on a CPU; a few labels in
                10,000 differ from fp32).

        Returns:
            (N, H, W) uint8 label maps.
        """
        was_training = self.training
        self.eval()
        device_type = self.prior_mean.device.type
        with torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=autocast):
            # max(1).indices, not argmax(1): same labels, but on the CPU argmax over the channel axis
            # took 1.44 s per 512 maps at 128x128 against 0.08 s (twice the whole decoder's time).
            out = [self.decode(chunk).max(1).indices.to(torch.uint8) for chunk in z.split(batch_size)]
        self.train(was_training)
        size = self.config["image_size"]
        return torch.cat(out) if out else torch.zeros(0, size, size, dtype=torch.uint8, device=z.device)
