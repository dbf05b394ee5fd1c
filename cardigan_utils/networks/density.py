"""Densities of latent codes: a Gaussian fitted to them and a Gaussian kernel density estimate.

One home for the maths of sampling new codes where a trained encoder put its training codes:
the shape VAE's codes (new cardiac shapes) and the SPADE style encoder's codes (new image
styles). The models keep the fitted numbers as buffers (saved with their weights): the shape VAE
as its own buffers, the SPADE generator as a :class:`CodeDensity`; :func:`fit_density` fits
both and :func:`draw_codes` draws from both.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import nn

DENSITY_KINDS = ("kde", "fitted", "standard")
"""What :func:`draw_codes` can draw from: the kernel density, the fitted Gaussian, N(0, I)."""


def kde_bandwidth(n: int, dim: int, rule: str | float = "scott") -> float:
    """The kernel width of a Gaussian KDE of ``n`` codes in ``dim`` whitened dimensions.

    In the whitened space of the codes (covariance I) the kernel is N(0, h^2 I); in the code space
    it is N(0, h^2 Sigma), the codes' own covariance shrunk by ``h``.

    Args:
        n: number of codes.
        dim: their dimension.
        rule: ``"scott"`` (``n ** (-1 / (dim + 4))``), ``"silverman"``
            (``(n * (dim + 2) / 4) ** (-1 / (dim + 4))``) or a number, used as it is.

    Returns:
        ``h``, in units of the codes' standard deviations.
    """
    if isinstance(rule, (int, float)) and not isinstance(rule, bool):
        if not rule > 0:
            raise ValueError(f"a bandwidth must be > 0, not {rule}")
        return float(rule)
    if rule == "scott":
        return n ** (-1.0 / (dim + 4))
    if rule == "silverman":
        return (n * (dim + 2) / 4.0) ** (-1.0 / (dim + 4))
    raise ValueError(f"bandwidth must be 'scott', 'silverman', 'cv' or a number > 0, not {rule!r}")


@torch.no_grad()
def cv_bandwidth(whitened: torch.Tensor, *, grid: Sequence[float] | None = None, max_rows: int = 2000,
                 generator: torch.Generator | None = None) -> float:
    """The kernel width that maximises the leave-one-out likelihood of whitened codes.

    Scott's and Silverman's rules assume one Gaussian blob; where the codes form clusters (slice
    levels, phases) they smooth across the gaps between them. Cross-validation picks the width
    that best predicts each code from the others (the choice Painchaud et al. make by grid search).

    Args:
        whitened: (N, D) codes in whitened units (N >= 2).
        grid: candidate widths (default 25 from 0.02 to 2, geometric).
        max_rows: held-out codes scored (a random subset of that many; all others stay in the density).
        generator: seeds that subset.

    Returns:
        The best width of the grid.
    """
    grid = torch.as_tensor(grid if grid is not None else torch.logspace(math.log10(0.02), math.log10(2.0), 25),
                           dtype=torch.float64)
    w = whitened.float()
    rows = torch.randperm(len(w), generator=generator, device=w.device)[:max_rows] if len(w) > max_rows else torch.arange(len(w))
    d2 = torch.cdist(w[rows], w) ** 2
    d2[torch.arange(len(rows)), rows] = float("inf")  # leave each code out of its own density
    loglik = [float((torch.logsumexp(-d2 / (2 * h**2), dim=1) - w.shape[1] * math.log(h)).mean()) for h in grid.tolist()]
    return float(grid[int(np.argmax(loglik))])


@torch.no_grad()
def fit_gaussian(codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and Cholesky factor of the full covariance of codes (a small ridge keeps it definite).

    Args:
        codes: (N, D) codes (N >= 2).

    Returns:
        ``(mean, chol)``: (D,) and (D, D) float32 tensors on the codes' device.
    """
    if codes.dim() != 2 or len(codes) < 2:
        raise ValueError(f"codes must be (N >= 2, D), not {tuple(codes.shape)}")
    codes = codes.to(torch.float64)
    cov = torch.cov(codes.T) + 1e-6 * torch.eye(codes.shape[1], dtype=torch.float64, device=codes.device)
    return codes.mean(0).float(), torch.linalg.cholesky(cov).float()


def whiten(z: torch.Tensor, mean: torch.Tensor, chol: torch.Tensor) -> torch.Tensor:
    """Codes in the whitened space of a Gaussian: ``L^-1 (z - mean)``, covariance I.

    Args:
        z: (N, D) codes.
        mean: (D,) mean of the Gaussian.
        chol: (D, D) lower Cholesky factor of its covariance.

    Returns:
        (N, D) whitened codes.
    """
    return torch.linalg.solve_triangular(chol, (z - mean).T, upper=False).T


@torch.no_grad()
def draw_codes(n: int, *, mean: torch.Tensor, chol: torch.Tensor, codes: torch.Tensor | None = None,
               bandwidth: float | torch.Tensor = 0.0, kind: str = "kde",
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw ``n`` codes from a fitted density.

    The kernel density draws exactly from the KDE, without rejection: pick one of the ``codes``
    and add Gaussian noise N(0, h^2 Sigma) (Sigma = chol chol^T, h the bandwidth). Painchaud et al.
    (TMI 2020) sample the same density by rejection; an exact draw needs no envelope.

    Args:
        n: how many.
        mean: (D,) mean of the fitted Gaussian.
        chol: (D, D) its Cholesky factor.
        codes: (M, D) the kernel centres; None or empty for no kernel density.
        bandwidth: ``h`` in whitened units.
        kind: ``"kde"`` (the kernel density; the fitted Gaussian where there are no ``codes``),
            ``"fitted"`` (the Gaussian) or ``"standard"`` (N(0, I)).
        generator: a seeded ``torch.Generator`` on the device of ``mean``.

    Returns:
        (n, D) codes on the device of ``mean``.
    """
    if kind not in DENSITY_KINDS:
        raise ValueError(f"prior must be one of {DENSITY_KINDS}, not {kind!r}")
    eps = torch.randn(n, mean.shape[0], generator=generator, device=mean.device)
    if kind == "standard":
        return eps
    if kind == "kde" and codes is not None and len(codes):
        pick = torch.randint(len(codes), (n,), generator=generator, device=mean.device)
        return codes[pick] + bandwidth * (eps @ chol.T)
    return mean + eps @ chol.T


BANDWIDTH_RULES = {"cv": "leave-one-out likelihood", "scott": "Scott's rule", "silverman": "Silverman's rule"}
"""The named kernel widths of :func:`fit_density`, and how a checkpoint's config says them."""


@torch.no_grad()
def fit_density(codes: torch.Tensor, *, bandwidth: str | float = "cv",
                seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Fit a Gaussian (mean, full covariance) and a Gaussian kernel density to codes.

    Args:
        codes: (N, D) codes (N >= 2).
        bandwidth: the kernel width in whitened units: ``"cv"`` (:func:`cv_bandwidth`), ``"scott"``,
            ``"silverman"`` (:func:`kde_bandwidth`) or a number > 0.
        seed: seeds the held-out subset of :func:`cv_bandwidth` (used where N > 2000).

    Returns:
        ``(mean, chol, centres, h)``: the Gaussian's (D,) mean and (D, D) Cholesky factor, the
        kernel centres (a float32 copy of ``codes``) and the width ``h``.
    """
    mean, chol = fit_gaussian(codes)
    centres = codes.detach().to(torch.float32).clone()
    if bandwidth == "cv":
        h = cv_bandwidth(whiten(centres, mean, chol), generator=torch.Generator(codes.device).manual_seed(seed))
    else:
        h = kde_bandwidth(len(codes), codes.shape[1], bandwidth)
    return mean, chol, centres, float(h)


class CodeDensity(nn.Module):
    """A density of codes kept as buffers (so it is saved and loaded as a state dict, weights-only).

    Unfitted, it is N(0, I): every kind of :func:`draw_codes` then draws from the standard normal,
    as a model trained with a KL term to N(0, I) assumes. :meth:`fit` replaces it by a Gaussian and
    a kernel density of codes (:func:`fit_density`).

    Args:
        dim: the codes' size.
    """

    def __init__(self, *, dim: int) -> None:
        super().__init__()
        if dim < 1:
            raise ValueError(f"a code density needs dim >= 1, not {dim}")
        self.dim = int(dim)
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("chol", torch.eye(dim))
        # the kernel centres: empty until fitted, sized to a state dict's by match() before loading it
        self.register_buffer("codes", torch.zeros(0, dim))
        self.register_buffer("bandwidth", torch.zeros(()))

    @torch.no_grad()
    def fit(self, codes: torch.Tensor, *, bandwidth: str | float = "cv", seed: int = 0) -> float:
        """Fit the Gaussian and the kernel density to codes (see :func:`fit_density`).

        Args:
            codes: (N, dim) codes, N >= 2.
            bandwidth: ``"cv"``, ``"scott"``, ``"silverman"`` or a kernel width > 0 in whitened units.
            seed: seed of the cross-validation subset.

        Returns:
            The kernel width.
        """
        if codes.dim() != 2 or codes.shape[1] != self.dim or len(codes) < 2:
            raise ValueError(f"codes must be (N >= 2, {self.dim}), not {tuple(codes.shape)}")
        mean, chol, centres, h = fit_density(codes.to(self.mean.device), bandwidth=bandwidth, seed=seed)
        self.mean.copy_(mean)
        self.chol.copy_(chol)
        self.codes = centres
        self.bandwidth.fill_(h)
        return h

    def match(self, state_dict: dict) -> None:
        """Size the kernel centres like those of ``state_dict``, so that it loads.

        Args:
            state_dict: a state dict of a CodeDensity.
        """
        codes = state_dict.get("codes") if isinstance(state_dict, dict) else None  # else loading says what is wrong
        if isinstance(codes, torch.Tensor) and codes.dim() == 2:
            self.codes = torch.zeros(codes.shape, dtype=self.codes.dtype, device=self.codes.device)

    @property
    def fitted(self) -> bool:
        """Whether :meth:`fit` gave it a kernel density (else it is N(0, I))."""
        return len(self.codes) > 0

    @torch.no_grad()
    def sample(self, n: int, *, kind: str = "kde", generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` codes (see :func:`draw_codes`).

        Args:
            n: how many.
            kind: ``"kde"``, ``"fitted"`` or ``"standard"``; any kind is N(0, I) while unfitted.
            generator: a seeded ``torch.Generator`` on the density's device (None: the global one).

        Returns:
            (n, dim) float32 codes on the density's device.
        """
        if kind not in DENSITY_KINDS:
            raise ValueError(f"prior must be one of {DENSITY_KINDS}, not {kind!r}")
        return draw_codes(n, mean=self.mean, chol=self.chol, codes=self.codes, bandwidth=self.bandwidth,
                          kind=kind if self.fitted else "standard", generator=generator)
