"""The segmentation network: MONAI's 2-D residual U-Net, built from explicit keyword arguments.

MONAI's ``UNet`` is used as is (no reason measured to write one); this module only fixes the kit's
defaults and keeps the configuration that checkpoints store beside the weights.
"""

from __future__ import annotations

from typing import Sequence

from monai.networks.nets import UNet
from torch import nn


def build_unet(*, in_channels: int = 1, num_classes: int = 4, channels: Sequence[int] = (16, 32, 64, 128, 256),
               num_res_units: int = 2, dropout: float = 0.0, norm: str = "instance") -> nn.Module:
    """A 2-D U-Net (MONAI ``UNet``) with stride-2 downsampling between its levels.

    Args:
        in_channels: image channels.
        num_classes: output classes (background included); the output is logits.
        channels: widths per level (the image size must be divisible by ``2 ** (len(channels) - 1)``).
        num_res_units: residual units per level.
        dropout: dropout probability.
        norm: ``"instance"`` (MONAI's default: each image normalised on its own, so the network
            ignores global contrast) or ``"batch"`` (statistics of the training set kept in eval
            mode, so its features still see an image's contrast and noise: the feature network of
            :mod:`cardigan_utils.synthetic.quality`).

    Returns:
        The network; its keyword arguments are in ``net.config``.
    """
    channels = tuple(int(c) for c in channels)
    net = UNet(spatial_dims=2, in_channels=in_channels, out_channels=num_classes, channels=channels,
               strides=(2,) * (len(channels) - 1), num_res_units=num_res_units, dropout=dropout, norm=norm)
    net.config = {"in_channels": in_channels, "num_classes": num_classes, "channels": list(channels),
                  "num_res_units": num_res_units, "dropout": dropout, "norm": norm}
    return net
