"""Multi-scale patch discriminator (pix2pixHD / SPADE) that returns its features for feature matching.

Each scale is a patch discriminator on the image and label map concatenated, the second scale on
the input average-pooled by two, the third by four. MONAI's ``MultiScalePatchDiscriminator``
deepens the network per scale instead of downsampling the input, which is not the SPADE
discriminator; hence this one (a few lines on ``torch.nn``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .spade import maybe_spectral_norm


class PatchDiscriminator(nn.Module):
    """A patch discriminator: 4x4 convolutions, stride 2 but the last two, widths capped at 512.

    Args:
        in_channels: image + label-map channels.
        ndf: width of the first layer.
        n_layers: convolution layers before the 1-channel output layer.
        norm: ``"instance"`` (the paper) or ``"none"`` after every layer but the first.
        spectral_norm: spectral normalisation on every convolution but the 1-channel output (as in the paper).
    """

    def __init__(self, *, in_channels: int, ndf: int = 64, n_layers: int = 4, norm: str = "instance",
                 spectral_norm: bool = True) -> None:
        super().__init__()
        if norm not in ("instance", "none"):
            raise ValueError(f"norm must be 'instance' or 'none', got {norm!r}")
        layers = [nn.Sequential(maybe_spectral_norm(nn.Conv2d(in_channels, ndf, 4, stride=2, padding=2), spectral_norm),
                                nn.LeakyReLU(0.2))]
        width = ndf
        for n in range(1, n_layers):
            out = min(width * 2, 512)
            stride = 1 if n == n_layers - 1 else 2
            layers.append(nn.Sequential(
                maybe_spectral_norm(nn.Conv2d(width, out, 4, stride=stride, padding=2, bias=norm == "none"), spectral_norm),
                nn.InstanceNorm2d(out, affine=False) if norm == "instance" else nn.Identity(),
                nn.LeakyReLU(0.2)))
            width = out
        layers.append(nn.Conv2d(width, 1, 4, stride=1, padding=2))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Args:
            x: (B, in_channels, H, W).

        Returns:
            The output of every layer; the last is the (B, 1, h, w) patch score map.
        """
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return features


class MultiScaleDiscriminator(nn.Module):
    """Patch discriminators on the input at full, half, quarter ... resolution.

    Args:
        image_channels: image channels.
        label_channels: label-map channels (the one-hot map is concatenated to the image).
        ndf: width of the first layer of each scale.
        n_layers: layers per scale.
        num_scales: number of scales.
        norm: see :class:`PatchDiscriminator`.
        spectral_norm: spectral normalisation on every convolution but the outputs.
    """

    def __init__(self, *, image_channels: int = 1, label_channels: int = 4, ndf: int = 64, n_layers: int = 4,
                 num_scales: int = 2, norm: str = "instance", spectral_norm: bool = True) -> None:
        super().__init__()
        self.config = dict(image_channels=image_channels, label_channels=label_channels, ndf=ndf, n_layers=n_layers,
                           num_scales=num_scales, norm=norm, spectral_norm=spectral_norm)
        self.scales = nn.ModuleList(
            PatchDiscriminator(in_channels=image_channels + label_channels, ndf=ndf, n_layers=n_layers, norm=norm,
                               spectral_norm=spectral_norm)
            for _ in range(num_scales))

    def forward(self, image: torch.Tensor, seg: torch.Tensor) -> list[list[torch.Tensor]]:
        """Score an image against its label map at every scale.

        Args:
            image: (B, C, H, W) image in [-1, 1].
            seg: (B, L, H, W) one-hot label map.

        Returns:
            One list per scale of the layer outputs; ``out[s][-1]`` is scale ``s``'s score map,
            ``out[s][:-1]`` its features for feature matching.
        """
        x = torch.cat([image, seg.to(image.dtype)], dim=1)
        outputs = []
        for i, scale in enumerate(self.scales):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(scale(x))
        return outputs
