"""Densities of latent codes: a Gaussian fitted to them and a Gaussian kernel density estimate.

One home for the maths of sampling new codes where a trained encoder put its training codes:
the shape VAE's codes (new cardiac shapes) and the SPADE style encoder's codes (new image
styles). The models keep the fitted numbers as buffers (saved with their weights); these
functions fit and draw from them.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

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
