"""Labelled pairs per second: VAE sample -> label map -> SPADE image, against MONAI's SPADE blocks.

Prints one JSON line with, per image size, pairs/s of the kit's generation path (shape VAE sampling,
argmax, SPADE generator in eval mode) and of the same path with the library baseline generator
(the paper's layout built from MONAI's ``SPADENetResBlock``, see ``spade_throughput.py``), and
their ratio. Throughput does not depend on training, so the networks are untrained; the
plausibility filter is off (its cost and keep-rate depend on how well the VAE is trained).

    python benchmarks/generate_throughput.py --sizes 64 --ngf 16 --hidden 64 --batch 64     # 2-core CPU (smoke/quick)
    python benchmarks/generate_throughput.py --sizes 128 256 --batch 256 --dtype bf16       # GPU (issue 6: >= 2,000 pairs/s at 256)
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cardigan_utils.config import STAGE_DEFAULTS, get_device  # noqa: E402
from cardigan_utils.labels import one_hot  # noqa: E402
from cardigan_utils.networks.spade import SPADEGenerator  # noqa: E402
from cardigan_utils.networks.vae import ShapeVAE  # noqa: E402
from spade_throughput import MonaiGenerator  # noqa: E402


def pairs_runner(vae, generator, *, n: int, batch: int, z_dim: int, amp, device, channels_last: bool):
    """A function that makes ``n`` pairs (VAE sample, one-hot, generator) and returns the seconds it took."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    @torch.no_grad()
    def run() -> float:
        t0 = time.perf_counter()
        gen = torch.Generator(device=device).manual_seed(0)
        for _ in range(n // batch):
            labels = vae.sample(batch, generator=gen, batch_size=batch)
            seg = one_hot(labels, num_classes=4).contiguous(memory_format=fmt)
            z = torch.randn(batch, z_dim, device=device) if z_dim else None
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                generator(seg, z) if z_dim else generator(seg)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    return run


def interleaved(runs: dict, *, pairs: int, repeats: int) -> dict[str, float]:
    """Pairs/s of each runner: one warm-up each, then ``repeats`` rounds of all in turn (median)."""
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            times[name].append(run())
    return {name: pairs / statistics.median(t) for name, t in times.items()}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--ngf", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--z-dim", type=int, default=64)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--n", type=int, default=None, help="pairs per timed run (default: 4 batches)")
    parser.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds, kit and baseline in turn")
    parser.add_argument("--channels-last", action="store_true", help="label maps (and so activations) channels-last")
    parser.add_argument("--modulation-kernel", type=int, default=STAGE_DEFAULTS["spade"]["modulation_kernel"],
                        help="kernel of the kit's gamma / beta convolutions (3: the paper's)")
    parser.add_argument("--block-modulation", action=argparse.BooleanOptionalAction,
                        default=STAGE_DEFAULTS["spade"]["block_modulation"],
                        help="one modulation per kit generator block (--no-block-modulation: one per norm, the paper's)")
    parser.add_argument("--baseline", choices=("monai", "none"), default="monai")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    device = get_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    amp = args.dtype == "bf16"
    n = args.n or 4 * args.batch
    results = []
    header = {"benchmark": "generate_throughput", "device": torch.cuda.get_device_name(0) if device.type == "cuda"
              else f"cpu ({torch.get_num_threads()} threads, {platform.machine()})", "torch": torch.__version__,
              "batch": args.batch, "ngf": args.ngf, "hidden": args.hidden, "z_dim": args.z_dim, "dtype": args.dtype,
              "n": n, "modulation_kernel": args.modulation_kernel, "block_modulation": args.block_modulation,
              "channels_last": args.channels_last}
    for size in args.sizes:
        torch.manual_seed(0)
        vae = ShapeVAE(image_size=size).to(device).eval()
        kit = SPADEGenerator(image_size=size, ngf=args.ngf, hidden_channels=args.hidden, z_dim=args.z_dim,
                             modulation_kernel=args.modulation_kernel, block_modulation=args.block_modulation)
        common = dict(n=n, batch=args.batch, amp=amp, device=device, channels_last=args.channels_last)
        runs = {"kit": pairs_runner(vae, kit.to(device).eval(), z_dim=args.z_dim, **common)}
        if args.baseline == "monai":
            base = MonaiGenerator(image_size=size, label_channels=4, out_channels=1, ngf=args.ngf, hidden=args.hidden)
            runs["monai"] = pairs_runner(vae, base.to(device).eval(), z_dim=0, **common)
        speed = interleaved(runs, pairs=(n // args.batch) * args.batch, repeats=args.repeats)
        result = {"size": size, "kit_pairs_per_s": round(speed["kit"], 1)}
        if args.baseline == "monai":
            result["monai_pairs_per_s"] = round(speed["monai"], 1)
            result["ratio_vs_monai"] = round(speed["kit"] / speed["monai"], 2)
        results.append(result)
    print(json.dumps({**header, "results": results}), flush=True)
    return results


if __name__ == "__main__":
    main()
