"""GAN losses of the SPADE recipe: hinge, feature matching, KL of the style encoder.

None needs downloaded weights (the paper's optional VGG perceptual loss is left out on purpose:
no weights can be fetched at run time). The segmentation losses come from MONAI.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def hinge_d_loss(real_scores: list[torch.Tensor], fake_scores: list[torch.Tensor]) -> torch.Tensor:
    """Discriminator hinge loss, averaged over scales: ``relu(1 - D(real)) + relu(1 + D(fake))``.

    Args:
        real_scores: score maps of real images, one per scale.
        fake_scores: score maps of generated images, one per scale.

    Returns:
        A scalar.
    """
    terms = [F.relu(1 - r.float()).mean() + F.relu(1 + f.float()).mean() for r, f in zip(real_scores, fake_scores)]
    return torch.stack(terms).mean()


def hinge_g_loss(fake_scores: list[torch.Tensor]) -> torch.Tensor:
    """Generator hinge loss, averaged over scales: ``-D(fake)``.

    Args:
        fake_scores: score maps of generated images, one per scale.

    Returns:
        A scalar.
    """
    return torch.stack([-f.float().mean() for f in fake_scores]).mean()


def feature_matching_loss(fake_features: list[list[torch.Tensor]], real_features: list[list[torch.Tensor]]) -> torch.Tensor:
    """L1 distance between discriminator features of fake and real images (pix2pixHD).

    Summed over the intermediate layers of each scale (the score map excluded), averaged over
    scales; the real features are targets (no gradient). Multiply by the weight (10 in the paper).

    Args:
        fake_features: per scale, the layer outputs for generated images (``D(...)`` output).
        real_features: the same for real images.

    Returns:
        A scalar.
    """
    per_scale = [sum(F.l1_loss(f.float(), r.detach().float()) for f, r in zip(fs[:-1], rs[:-1]))
                 for fs, rs in zip(fake_features, real_features)]
    return torch.stack(per_scale).mean()


def kl_loss(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL divergence of N(mu, exp(logvar)) from N(0, I), summed over the code and averaged over the batch.

    Args:
        mu: (B, Z) means.
        logvar: (B, Z) log-variances.

    Returns:
        A scalar.
    """
    mu, logvar = mu.float(), logvar.float()
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()
