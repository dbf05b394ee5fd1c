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
