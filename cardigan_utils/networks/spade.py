"""SPADE generator: a label map in, an image whose anatomy is that label map out.

Park et al., *Semantic Image Synthesis with Spatially-Adaptive Normalization* (CVPR 2019), the
generator used by Skandarani et al. (MIDL 2020) and cardiGAN. Layout as in the paper: a head at
``16 * ngf`` channels on the label map downsampled by 32, seven SPADE residual blocks with five
x2 upsamplings, a 3x3 convolution and tanh.

Written here rather than taken from MONAI's ``SPADENet`` for reasons measured or required by
the study (``benchmarks/spade_throughput.py`` prints both in the same run):

- gamma and beta of each SPADE norm come from one convolution with ``2 * C`` outputs instead of
  two, and the label map is resized once per resolution instead of once per norm;
- a lighter modulation (issue 22), measured at equal image quality: ``block_modulation`` gives
  each residual block one shared label-map layer and one convolution for the gamma and beta of
  all its norms (:class:`BlockModulation`; the paper has a pair of convolutions per norm), and
  ``modulation_kernel=1`` makes that convolution 1x1 (the shared 3x3 layer still sees each
  pixel's neighbourhood). Those convolutions were 75-80 % of the generator's work;
- the paper's generator (upsampling between blocks, tanh output, optional spectral norm, the
  ``z`` / style-encoder path) which MONAI's decoder does not reproduce;
- it runs channels-last under bf16 autocast and ``torch.compile`` without graph breaks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def maybe_spectral_norm(module: nn.Module, spectral_norm: bool) -> nn.Module:
    """``module`` with spectral normalisation of its weight when ``spectral_norm`` is set.

    Args:
        module: a layer with a ``weight``.
        spectral_norm: whether to wrap it.

    Returns:
        The (wrapped) module.
    """
    return nn.utils.parametrizations.spectral_norm(module) if spectral_norm else module


def _param_free_norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=False)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    raise ValueError(f"norm must be 'batch' or 'instance', got {kind!r}")


class SPADE(nn.Module):
    """Spatially-adaptive normalisation: parameter-free norm, then per-pixel ``gamma`` / ``beta``.

    ``out = norm(x) * (1 + gamma(seg)) + beta(seg)``, ``gamma`` and ``beta`` predicted from the
    label map by a small two-layer convolutional network.

    Args:
        channels: channels of the normalised features ``x``.
        label_channels: channels of the (one-hot) label map.
        hidden_channels: width of the shared layer (128 in the paper).
        norm: ``"batch"`` (the paper's generator) or ``"instance"``.
        kernel_size: kernel of the shared label-map convolution.
        modulation_kernel: kernel of the gamma / beta convolution (default ``kernel_size``).
    """

    def __init__(self, *, channels: int, label_channels: int, hidden_channels: int = 128,
                 norm: str = "batch", kernel_size: int = 3, modulation_kernel: int | None = None) -> None:
        super().__init__()
        modulation_kernel = kernel_size if modulation_kernel is None else modulation_kernel
        self.norm = _param_free_norm(norm, channels)
        self.shared = nn.Sequential(nn.Conv2d(label_channels, hidden_channels, kernel_size, padding=kernel_size // 2),
                                    nn.ReLU())
        # one convolution for gamma and beta: half the kernel launches of two (measured in the benchmark)
        self.gamma_beta = nn.Conv2d(hidden_channels, 2 * channels, modulation_kernel, padding=modulation_kernel // 2)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` and modulate it by ``seg``.

        Args:
            x: (B, C, H, W) features.
            seg: (B, L, H, W) label map at the resolution of ``x``.

        Returns:
            (B, C, H, W).
        """
        gamma, beta = self.gamma_beta(self.shared(seg)).chunk(2, dim=1)
        return self.norm(x) * (1 + gamma) + beta


class BlockModulation(nn.Module):
    """The gamma and beta of every SPADE norm of a residual block, from one shared layer and one convolution.

    Args:
        channels: channels of each normalised input, in the order the block uses them.
        label_channels: channels of the (one-hot) label map.
        hidden_channels: width of the shared 3x3 layer.
        kernel_size: kernel of the gamma / beta convolution.
    """

    def __init__(self, *, channels: tuple[int, ...], label_channels: int, hidden_channels: int = 128,
                 kernel_size: int = 1) -> None:
        super().__init__()
        self.splits = [c for c in channels for _ in ("gamma", "beta")]
        self.shared = nn.Sequential(nn.Conv2d(label_channels, hidden_channels, 3, padding=1), nn.ReLU())
        self.gamma_beta = nn.Conv2d(hidden_channels, sum(self.splits), kernel_size, padding=kernel_size // 2)

    def forward(self, seg: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Args:
            seg: (B, L, H, W) label map.

        Returns:
            One ``(gamma, beta)`` pair per entry of ``channels``, each (B, C, H, W).
        """
        hidden = self.shared(seg)
        if self.gamma_beta.kernel_size == (1, 1) and hidden.device.type == "cpu" and hidden.is_contiguous():
            # channels-first on the CPU: the 1x1 convolution as one batched matrix product, half the
            # time of oneDNN's 1x1 convolution in that layout (measured: 50 ms, not 101 ms, for 64
            # maps of 64x64; channels-last features take the convolution, as fast there)
            n, _, h, w = hidden.shape
            weight, bias = self.gamma_beta.weight.flatten(1), self.gamma_beta.bias
            out = torch.baddbmm(bias[None, :, None], weight.expand(n, -1, -1), hidden.flatten(2)).view(n, -1, h, w)
        else:
            out = self.gamma_beta(hidden)
        out = out.split(self.splits, dim=1)
        return list(zip(out[0::2], out[1::2]))


class SPADEResBlock(nn.Module):
    """Residual block: (SPADE, leaky ReLU, 3x3 conv) twice, plus a learned shortcut when the width changes.

    Args:
        in_channels: input width.
        out_channels: output width.
        label_channels: channels of the label map.
        hidden_channels: SPADE hidden width.
        norm: parameter-free norm of the SPADE layers.
        spectral_norm: spectral normalisation on the three convolutions.
        modulation_kernel: kernel of the gamma / beta convolutions (3 in the paper).
        block_modulation: one :class:`BlockModulation` for the block's norms instead of a
            :class:`SPADE` each; the shortcut's norm is then the first norm's output (the same
            parameter-free norm of the same input), modulated by its own gamma and beta.
    """

    def __init__(self, *, in_channels: int, out_channels: int, label_channels: int, hidden_channels: int = 128,
                 norm: str = "batch", spectral_norm: bool = False, modulation_kernel: int = 3,
                 block_modulation: bool = False) -> None:
        super().__init__()
        mid = min(in_channels, out_channels)
        self.learned_shortcut = in_channels != out_channels
        self.block_modulation = block_modulation
        if block_modulation:
            channels = (in_channels, mid) + ((in_channels,) if self.learned_shortcut else ())
            self.modulation = BlockModulation(channels=channels, label_channels=label_channels,
                                              hidden_channels=hidden_channels, kernel_size=modulation_kernel)
            self.norm_0 = _param_free_norm(norm, in_channels)
            self.norm_1 = _param_free_norm(norm, mid)
        else:
            spade = dict(label_channels=label_channels, hidden_channels=hidden_channels, norm=norm,
                         modulation_kernel=modulation_kernel)
            self.norm_0 = SPADE(channels=in_channels, **spade)
            self.norm_1 = SPADE(channels=mid, **spade)
            if self.learned_shortcut:
                self.norm_s = SPADE(channels=in_channels, **spade)
        self.conv_0 = maybe_spectral_norm(nn.Conv2d(in_channels, mid, 3, padding=1), spectral_norm)
        self.conv_1 = maybe_spectral_norm(nn.Conv2d(mid, out_channels, 3, padding=1), spectral_norm)
        if self.learned_shortcut:
            self.conv_s = maybe_spectral_norm(nn.Conv2d(in_channels, out_channels, 1, bias=False), spectral_norm)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        """Args:
            x: (B, in_channels, H, W).
            seg: (B, L, H, W) label map at this resolution.

        Returns:
            (B, out_channels, H, W).
        """
        if not self.block_modulation:
            shortcut = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
            dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
            dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
            return shortcut + dx
        (gamma_0, beta_0), (gamma_1, beta_1), *short = self.modulation(seg)
        normed = self.norm_0(x)
        shortcut = self.conv_s(normed * (1 + short[0][0]) + short[0][1]) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(normed * (1 + gamma_0) + beta_0, 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx) * (1 + gamma_1) + beta_1, 0.2))
        return shortcut + dx


class StyleEncoder(nn.Module):
    """Image to the mean and log-variance of a style code (the SPADE paper's VAE encoder).

    Stride-2 3x3 convolutions with instance norm down to a 4x4 map (at most six), then two
    linear layers.

    Args:
        image_size: input size (64, 128 or 256).
        in_channels: image channels.
        z_dim: style code size.
        ndf: width of the first layer (doubled up to ``8 * ndf``).
        spectral_norm: spectral normalisation on the convolutions.
    """

    def __init__(self, *, image_size: int = 128, in_channels: int = 1, z_dim: int = 64, ndf: int = 32,
                 spectral_norm: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_channels
        for i in range(min(6, int(image_size).bit_length() - 3)):  # 64 -> 4 layers, 128 -> 5, 256 -> 6
            out = ndf * min(2**i, 8)
            layers += [maybe_spectral_norm(nn.Conv2d(width, out, 3, stride=2, padding=1), spectral_norm),
                       nn.InstanceNorm2d(out, affine=False), nn.LeakyReLU(0.2)]
            width = out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.mu = nn.Linear(width * 16, z_dim)
        self.logvar = nn.Linear(width * 16, z_dim)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args:
            image: (B, C, H, W) at ``image_size``.

        Returns:
            ``(mu, logvar)``, each (B, z_dim).
        """
        h = self.features(image)
        return self.mu(h), self.logvar(h)


class SPADEGenerator(nn.Module):
    """The SPADE generator: label map (and optional style code ``z``) to image.

    Without ``z_dim`` the head is a 3x3 convolution of the label map downsampled by 32 (the
    paper's default); with ``z_dim`` it is a linear layer of ``z`` (the multi-modal variant:
    a new ``z`` gives a new appearance for the same anatomy).

    Args:
        image_size: output size, a power of two from 64 to 256.
        label_channels: channels of the one-hot label map (4: background + three structures).
        out_channels: image channels (1 for MRI and echo).
        ngf: width of the last block; the head is ``16 * ngf``.
        hidden_channels: SPADE hidden width.
        z_dim: style code size, 0 for none.
        norm: parameter-free norm inside SPADE (``"batch"`` as in the paper, or ``"instance"``).
        spectral_norm: spectral normalisation on the block convolutions (the paper's default).
        modulation_kernel: kernel of the gamma / beta convolutions (3: the paper; 1: lighter).
        block_modulation: one shared modulation per residual block (see :class:`SPADEResBlock`).
            The defaults of these two are the paper's, so a checkpoint from before them loads;
            :func:`~cardigan_utils.images.build_spade` chooses the kit's.
    """

    def __init__(self, *, image_size: int = 128, label_channels: int = 4, out_channels: int = 1, ngf: int = 32,
                 hidden_channels: int = 128, z_dim: int = 0, norm: str = "batch", spectral_norm: bool = True,
                 modulation_kernel: int = 3, block_modulation: bool = False) -> None:
        super().__init__()
        if image_size not in (64, 128, 256):
            raise ValueError(f"image_size must be 64, 128 or 256 (a power of two), got {image_size}")
        if modulation_kernel < 1 or modulation_kernel % 2 == 0:
            raise ValueError(f"modulation_kernel must be odd (1, 3, ...) to keep the size, got {modulation_kernel}")
        self.config = dict(image_size=image_size, label_channels=label_channels, out_channels=out_channels, ngf=ngf,
                           hidden_channels=hidden_channels, z_dim=z_dim, norm=norm, spectral_norm=spectral_norm,
                           modulation_kernel=modulation_kernel, block_modulation=block_modulation)
        self.image_size, self.z_dim, self.label_channels = image_size, z_dim, label_channels
        self.head_size = image_size // 32
        head = 16 * ngf
        if z_dim:
            self.fc = nn.Linear(z_dim, head * self.head_size**2)
        else:
            self.fc = nn.Conv2d(label_channels, head, 3, padding=1)
        block = dict(label_channels=label_channels, hidden_channels=hidden_channels, norm=norm, spectral_norm=spectral_norm,
                     modulation_kernel=modulation_kernel, block_modulation=block_modulation)
        # (in, out, upsample before the block): the paper's "normal" layout, head at size / 32
        widths = [(16, 16, False), (16, 16, True), (16, 16, False), (16, 8, True), (8, 4, True), (4, 2, True), (2, 1, True)]
        self.blocks = nn.ModuleList(SPADEResBlock(in_channels=i * ngf, out_channels=o * ngf, **block) for i, o, _ in widths)
        self.upsample_before = [up for _, _, up in widths]
        self.to_image = nn.Conv2d(ngf, out_channels, 3, padding=1)

    def forward(self, seg: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """Render an image of the label map.

        Args:
            seg: (B, label_channels, S, S) one-hot label map at ``image_size``.
            z: (B, z_dim) style codes when the generator has them; None draws them from N(0, I).

        Returns:
            (B, out_channels, S, S) image in [-1, 1].
        """
        if seg.shape[-1] != self.image_size or seg.shape[-2] != self.image_size:
            raise ValueError(f"label map is {tuple(seg.shape[-2:])}, this generator makes {self.image_size}x{self.image_size}")
        # the label map at every resolution, resized once (nearest keeps it one-hot)
        segs = {self.image_size: seg}
        size = self.image_size
        while size > self.head_size:
            size //= 2
            segs[size] = F.interpolate(segs[2 * size], size=(size, size), mode="nearest")
        if self.z_dim:
            if z is None:
                z = torch.randn(seg.shape[0], self.z_dim, device=seg.device, dtype=seg.dtype)
            x = self.fc(z).view(seg.shape[0], -1, self.head_size, self.head_size)
        else:
            x = self.fc(segs[self.head_size])
        for block, up in zip(self.blocks, self.upsample_before):
            if up:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = block(x, segs[x.shape[-1]])
        return torch.tanh(self.to_image(F.leaky_relu(x, 0.2)))


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters.

    Args:
        module: any module.

    Returns:
        The count.
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
