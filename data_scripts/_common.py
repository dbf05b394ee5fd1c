"""Argument handling shared by the prepare_* scripts (the logic is in cardigan_utils.data.prepare)."""

from __future__ import annotations

import argparse
import sys


def prepare_main(dataset: str, argv=None) -> int:
    from cardigan_utils.data import get_dataset
    from cardigan_utils.data.case import DataError
    from cardigan_utils.data.prepare import prepare_dataset

    p = argparse.ArgumentParser(description=f"Verify the official {dataset} download and convert it to the kit's slice cache.")
    p.add_argument("source", help="the downloaded archive (.zip/.tar.gz) or the unpacked folder")
    p.add_argument("--run-dir", default="runs/demo", help="run directory that receives the cache")
    p.add_argument("--image-size", type=int, default=128, choices=(64, 128, 256))
    p.add_argument("--sha256", default=None, help="expected SHA-256 of the archive")
    p.add_argument("--unpack-to", default=None, help="where to unpack an archive")
    splits = get_dataset(dataset).splits  # the dataset's official splits, as its reader declares them
    if splits:
        p.add_argument("--split", default=None, choices=splits, help="official split to read (default: all)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        report, cache = prepare_dataset(args.source, dataset=dataset, run_dir=args.run_dir, image_size=args.image_size,
                                        sha256=args.sha256, unpack_to=args.unpack_to,
                                        split=getattr(args, "split", None), seed=args.seed)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(report.summary())
    print(f"cache: {cache.path} ({cache.manifest['n_slices']} slices; patients {cache.manifest['patients']})")
    return 2 if report.problems else 0
