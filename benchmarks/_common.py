"""What the training benchmarks share: the dataset arguments and the slice cache they train on."""

from __future__ import annotations

import argparse


def dataset_parser(description: str, *, run_dir: str) -> argparse.ArgumentParser:
    """A parser with the dataset, cache and device arguments of every training benchmark.

    Args:
        description: the script's one-line description.
        run_dir: the default run directory.

    Returns:
        The parser; add the script's own arguments to it.
    """
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--dataset", default="acdc")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--n-patients", type=int, default=None)
    p.add_argument("--run-dir", default=run_dir)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    return p


def prepare(args: argparse.Namespace):
    """Seed, pick the device and build (or load) the slice cache the arguments name.

    Args:
        args: parsed by a :func:`dataset_parser` parser.

    Returns:
        ``(device, cache)``.
    """
    from cardigan_utils.config import get_device, set_seed
    from cardigan_utils.data import prepare_cache

    set_seed(args.seed)
    cache = prepare_cache(args.dataset, run_dir=args.run_dir, image_size=args.image_size, data_dir=args.data_dir,
                          n_patients=args.n_patients, seed=args.seed, progress=False)
    return get_device(args.device), cache


def spade_arguments(p: argparse.ArgumentParser, *, batch_size: int, amp: str) -> None:
    """Add the SPADE training arguments (widths and schedule; ``--max-epochs 20`` as the quick profile).

    Args:
        p: a :func:`dataset_parser` parser.
        batch_size: the default ``--batch-size``.
        amp: the default ``--amp`` (``"auto"``, ``"on"`` or ``"off"``).
    """
    p.add_argument("--max-epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=batch_size)
    p.add_argument("--ngf", type=int, default=16)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--ndf", type=int, default=32)
    p.add_argument("--z-dim", type=int, default=64)
    p.add_argument("--modulation-kernel", type=int, default=None,
                   help="kernel of the gamma / beta convolutions (default: the kit's; 3: the paper's)")
    p.add_argument("--block-modulation", action=argparse.BooleanOptionalAction, default=None,
                   help="one modulation per generator block (default: the kit's; --no-block-modulation: the paper's)")
    p.add_argument("--amp", choices=("auto", "on", "off"), default=amp, help="bf16 autocast (on: also on CPU)")


def train_spade_of(args: argparse.Namespace, cache, device, **kw):
    """Train (or resume) the SPADE GAN the :func:`spade_arguments` describe, in ``args.run_dir``.

    Args:
        args: parsed arguments.
        cache: the slice cache.
        device: the device.
        **kw: more keyword arguments of ``train_spade``.

    Returns:
        ``(history, seconds)``: the training history and the seconds this call took.
    """
    import time

    from cardigan_utils.images import train_spade

    modulation = {k: v for k, v in (("modulation_kernel", args.modulation_kernel),
                                     ("block_modulation", args.block_modulation)) if v is not None}
    t0 = time.perf_counter()
    hist = train_spade(cache, run_dir=args.run_dir, ngf=args.ngf, hidden_channels=args.hidden, ndf=args.ndf,
                       z_dim=args.z_dim, max_epochs=args.max_epochs, batch_size=args.batch_size, device=device,
                       amp={"auto": None, "on": True, "off": False}[args.amp], seed=args.seed, **modulation, **kw)
    return hist, time.perf_counter() - t0


def spade_result(benchmark: str, args: argparse.Namespace, device, hist, train_s: float) -> dict:
    """The head of a SPADE benchmark's JSON line: what ran, where, with which widths, for how long.

    Args:
        benchmark: the benchmark's name.
        args: parsed arguments (:func:`dataset_parser` and :func:`spade_arguments`).
        device: the device.
        hist: the training history.
        train_s: the seconds training took in this call.

    Returns:
        ``benchmark``, ``dataset``, ``image_size``, ``device``, ``threads``, ``config``, ``epochs``,
        ``train_s_this_call``, ``train_img_per_s_median`` (over the epochs; ``None`` in ``config``
        is the kit's default).
    """
    import torch

    return {"benchmark": benchmark, "dataset": args.dataset, "image_size": args.image_size, "device": str(device),
            "threads": torch.get_num_threads(),
            "config": {k: getattr(args, k) for k in ("ngf", "hidden", "ndf", "z_dim", "batch_size", "amp",
                                                     "modulation_kernel", "block_modulation")},
            "epochs": int(hist.epoch.max()), "train_s_this_call": round(train_s, 1),
            "train_img_per_s_median": round(float(hist.img_per_s.median()), 1)}
