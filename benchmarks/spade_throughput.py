"""SPADE training throughput: one full iteration (D step + G step), the kit against MONAI's pieces.

Prints one JSON line: images/s, s/iter and peak GPU memory of the kit's SPADE, the same for the
library baseline built from MONAI's SPADE residual blocks (``SPADENetResBlock``) in the paper's
layout with MONAI's ``PatchDiscriminator`` per scale, and their ratio. The baseline trains by the
two-pass step (a D step, then a G step: ``spade_step(simultaneous=False)``) with PyTorch's default
Adam; the kit as its trainer does (one discriminator pass, fused Adam, its lighter modulation).
Each of the kit's choices can be turned back, to measure what it gives: ``--sequential``,
``--no-fused-adam``, ``--modulation-kernel 3 --no-block-modulation`` (all four: the kit before
issue 22).

Reference config of issue 5 (the defaults): 256x256, batch 16, 4 labels, ngf 64, 2 D scales of 4
layers, ndf 64, hinge + feature matching, 3 output channels. On the 2-core CPU use a small one:

    python benchmarks/spade_throughput.py --size 64 --batch 16 --ngf 16 --hidden 64 --ndf 32 --out-channels 1
    python benchmarks/spade_throughput.py --dtype bf16 --channels-last --compile     # on a GPU
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cardigan_utils.config import STAGE_DEFAULTS, get_device  # noqa: E402
from cardigan_utils.images import build_spade, spade_step  # noqa: E402
from cardigan_utils.labels import one_hot  # noqa: E402

_SPADE = STAGE_DEFAULTS["spade"]

REFERENCE_IMG_S = 71.9
"""NVlabs SPADE trainer at the reference config on an H100, measured by the issue's author."""


class MonaiGenerator(nn.Module):
    """The paper's generator layout built from MONAI's ``SPADENetResBlock`` (the library baseline)."""

    def __init__(self, *, image_size: int, label_channels: int, out_channels: int, ngf: int, hidden: int) -> None:
        super().__init__()
        from monai.networks.nets.spade_network import SPADENetResBlock

        self.head_size = image_size // 32
        self.fc = nn.Conv2d(label_channels, 16 * ngf, 3, padding=1)
        widths = [(16, 16, False), (16, 16, True), (16, 16, False), (16, 8, True), (8, 4, True), (4, 2, True), (2, 1, True)]
        self.blocks = nn.ModuleList(
            SPADENetResBlock(spatial_dims=2, in_channels=i * ngf, out_channels=o * ngf, label_nc=label_channels,
                             spade_intermediate_channels=hidden, norm="BATCH") for i, o, _ in widths)
        self.up = [u for _, _, u in widths]
        self.to_image = nn.Conv2d(ngf, out_channels, 3, padding=1)

    def forward(self, seg, z=None):
        x = self.fc(nn.functional.interpolate(seg, size=(self.head_size, self.head_size), mode="nearest"))
        for block, up in zip(self.blocks, self.up):
            if up:
                x = nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
            x = block(x, seg)
        return torch.tanh(self.to_image(nn.functional.leaky_relu(x, 0.2)))


class MonaiDiscriminator(nn.Module):
    """MONAI's ``PatchDiscriminator`` per scale, on the input average-pooled per scale as in SPADE.

    (MONAI's ``MultiScalePatchDiscriminator`` deepens each scale instead of pooling the input,
    which does not fit small images; its patch discriminator is the piece compared here.)
    """

    def __init__(self, *, in_channels: int, ndf: int, n_layers: int, num_scales: int) -> None:
        super().__init__()
        from monai.networks.nets.patchgan_discriminator import PatchDiscriminator

        # MONAI counts the layers after the first convolution
        self.scales = nn.ModuleList(
            PatchDiscriminator(spatial_dims=2, channels=ndf, in_channels=in_channels, num_layers_d=n_layers - 1,
                               norm="INSTANCE", last_conv_kernel_size=4) for _ in range(num_scales))

    def forward(self, image, seg):
        x = torch.cat([image, seg.to(image.dtype)], 1)
        out = []
        for i, scale in enumerate(self.scales):
            if i:
                x = nn.functional.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            out.append(scale(x))
        return out


def build(impl: str, args) -> tuple[nn.Module, nn.Module]:
    if impl == "kit":
        g, d, _ = build_spade(image_size=args.size, ngf=args.ngf, hidden_channels=args.hidden, ndf=args.ndf,
                              n_layers_d=args.layers_d, num_scales=args.num_d, spectral_norm=args.spectral_norm,
                              modulation_kernel=args.modulation_kernel, block_modulation=args.block_modulation,
                              label_channels=args.labels, image_channels=args.out_channels)
        return g, d
    g = MonaiGenerator(image_size=args.size, label_channels=args.labels, out_channels=args.out_channels, ngf=args.ngf,
                       hidden=args.hidden)
    d = MonaiDiscriminator(in_channels=args.labels + args.out_channels, ndf=args.ndf, n_layers=args.layers_d,
                           num_scales=args.num_d)
    return g, d


ABLATION = {
    "kit before issue 22": dict(modulation_kernel=3, block_modulation=False, sequential=True, fused_adam=False),
    "+ fused Adam": dict(modulation_kernel=3, block_modulation=False, sequential=True, fused_adam=True),
    "+ lighter modulation": dict(modulation_kernel=1, block_modulation=True, sequential=True, fused_adam=True),
    "+ one discriminator pass": dict(modulation_kernel=1, block_modulation=True, sequential=False, fused_adam=True),
}
"""``--ablation``: the kit's speed steps of issue 22, one at a time (the last is the kit's default)."""


def prepare(impl: str, args, device: torch.device):
    """Build one implementation and its optimisers; return ``(run, info)``: ``run(n)`` times ``n`` steps."""
    torch.manual_seed(0)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    g, d = build(impl, args)
    g.to(device=device, memory_format=fmt)
    d.to(device=device, memory_format=fmt)
    # the kit's trainer: fused Adam and (--sequential off) one discriminator pass per step; the
    # baseline: the two-pass step and PyTorch's default Adam, as a MONAI-based trainer would have
    kit = impl == "kit"
    fused = {"fused": True} if kit and args.fused_adam and device.type in ("cpu", "cuda") else {}
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-4, betas=(0.0, 0.9), **fused)
    opt_d = torch.optim.Adam(d.parameters(), lr=4e-4, betas=(0.0, 0.9), **fused)
    simultaneous = kit and not args.sequential
    gs, ds = (torch.compile(g), torch.compile(d)) if args.compile else (g, d)
    amp = torch.bfloat16 if args.dtype == "bf16" else None
    # a few different batches, rotated, so no run times a cached input
    batches = []
    for _ in range(4):
        seg = one_hot(torch.randint(0, args.labels, (args.batch, args.size, args.size)), num_classes=args.labels)
        real = torch.rand(args.batch, args.out_channels, args.size, args.size) * 2 - 1
        batches.append((seg.to(device).contiguous(memory_format=fmt), real.to(device).contiguous(memory_format=fmt)))
    last: dict = {}

    def run(n: int) -> float:
        t0 = time.perf_counter()
        for i in range(n):
            last["losses"] = spade_step(gs, ds, opt_g, opt_d, *batches[i % 4], amp_dtype=amp, simultaneous=simultaneous)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    info = {"params_g_m": round(sum(p.numel() for p in g.parameters()) / 1e6, 2),
            "params_d_m": round(sum(p.numel() for p in d.parameters()) / 1e6, 2),
            "finite": lambda: all(bool(torch.isfinite(v)) for v in last["losses"].values())}
    return run, info


def measure_all(impls: dict, args, device: torch.device) -> dict:
    """Time every implementation, their repeats interleaved so a noisy machine slows them alike.

    Args:
        impls: name -> (impl, args of that implementation).
        args: the common arguments (warmup, iters, repeats).
        device: the device.

    Returns:
        name -> s/iter (median of the repeats), img/s, spread of the repeats, warm-up seconds,
        peak GPU memory, parameter counts, whether the last losses were finite.
    """
    prepared = {name: prepare(impl, a, device) for name, (impl, a) in impls.items()}
    warmup = {name: round(run(args.warmup), 1) for name, (run, _) in prepared.items()}
    times: dict[str, list[float]] = {name: [] for name in prepared}
    peak: dict[str, float] = {name: 0.0 for name in prepared}
    for _ in range(args.repeats):
        for name, (run, _) in prepared.items():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            times[name].append(run(args.iters) / args.iters)
            if device.type == "cuda":
                peak[name] = max(peak[name], torch.cuda.max_memory_allocated() / 2**30)
    out = {}
    for name, (_, info) in prepared.items():
        s_iter = statistics.median(times[name])
        out[name] = {
            "s_per_iter": round(s_iter, 5),
            "img_per_s": round(args.batch / s_iter, 1),
            "spread": round((max(times[name]) - min(times[name])) / s_iter, 3),
            "peak_gib": round(peak[name], 2) if device.type == "cuda" else None,
            "warmup_s": warmup[name],
            "params_g_m": info["params_g_m"],
            "params_d_m": info["params_d_m"],
            "losses_finite": info["finite"](),
        }
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128, help="SPADE hidden width")
    parser.add_argument("--labels", type=int, default=4)
    parser.add_argument("--out-channels", type=int, default=3)
    parser.add_argument("--num-d", type=int, default=2, help="discriminator scales")
    parser.add_argument("--layers-d", type=int, default=4, help="layers per discriminator scale")
    parser.add_argument("--ndf", type=int, default=64)
    parser.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--no-spectral-norm", dest="spectral_norm", action="store_false")
    parser.add_argument("--modulation-kernel", type=int, default=_SPADE["modulation_kernel"],
                        help="kernel of the kit's gamma / beta convolutions (3: the paper's)")
    parser.add_argument("--block-modulation", action=argparse.BooleanOptionalAction, default=_SPADE["block_modulation"],
                        help="one modulation per kit generator block (--no-block-modulation: one per norm, the paper's)")
    parser.add_argument("--sequential", action="store_true",
                        help="the kit trains by the two-pass step (D step, then G step against the updated D)")
    parser.add_argument("--no-fused-adam", dest="fused_adam", action="store_false", help="the kit's Adam unfused")
    parser.add_argument("--ablation", action="store_true",
                        help="time the kit at each speed step of issue 22 (ABLATION) instead of once")
    parser.add_argument("--baseline", choices=("monai", "none"), default="monai")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iters", type=int, default=5, help="steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=6, help="timed repeats of each, interleaved")
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    config = {k: v for k, v in vars(args).items() if k not in ("device", "threads")}
    impls = {"kit": ("kit", args)}
    if args.ablation:
        impls = {name: ("kit", argparse.Namespace(**{**vars(args), **steps})) for name, steps in ABLATION.items()}
    if args.baseline == "monai":
        impls["monai"] = ("monai", args)
    measured = measure_all(impls, args, device)
    result = {"benchmark": "spade_throughput", "device": torch.cuda.get_device_name(0) if device.type == "cuda"
              else f"cpu ({torch.get_num_threads()} threads, {platform.machine()})",
              "torch": torch.__version__, **config, **measured}
    if args.baseline == "monai":
        for name in impls:
            if name != "monai":
                key = "ratio_vs_monai" if name == "kit" else f"ratio_vs_monai ({name})"
                result[key] = round(measured[name]["img_per_s"] / measured["monai"]["img_per_s"], 2)
    if device.type == "cuda" and "kit" in measured:
        result["ratio_vs_nvlabs_reference"] = round(result["kit"]["img_per_s"] / REFERENCE_IMG_S, 2)
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
