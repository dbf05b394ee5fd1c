#!/usr/bin/env python
"""Train a real-only U-Net on a dataset's slice cache, then segment its held-out patients two ways; one JSON line.

    .venv/bin/python benchmarks/segment_acdc.py --dataset acdc --image-size 128 --max-epochs 10 --run-dir runs/segment_acdc

1. In the cache's space: Dice / HD95 per volume on the TEST patients' cached slices
   (``metrics.segmentation_scores``, heart-centred crops as in training).
2. In the patients' own geometry, as a user would: ``cardigan segment`` on the TEST patients'
   original NIfTI files (no labels used to place the crop), then ``cardigan evaluate`` against their
   ``_gt`` files. The gap between the two is what locating the heart and resampling cost.

Resumable: run it again to continue training.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    import torch

    from _common import dataset_parser, prepare
    from cardigan_utils.augment import augment_batch
    from cardigan_utils.data import dataset_dir
    from cardigan_utils.metrics import segmentation_scores
    from cardigan_utils.segmentation import (data_config, evaluate_folders, load_segmenter, predict, segment_folder,
                                             train_segmenter)

    p = dataset_parser(__doc__.splitlines()[0], run_dir="runs/segment_acdc")
    p.add_argument("--max-epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--augment", action="store_true", help="classical augmentation (augment.augment_batch)")
    args = p.parse_args(argv)
    device, cache = prepare(args)
    train, val, test = cache.indices("train"), cache.indices("val"), cache.indices("test")
    t0 = time.perf_counter()
    hist = train_segmenter([(cache.images[train], cache.labels[train])], val=(cache.images[val], cache.labels[val]),
                           run_dir=args.run_dir, max_epochs=args.max_epochs, batch_size=args.batch_size,
                           data=data_config(cache), device=device, seed=args.seed,
                           augment=functools.partial(augment_batch, modality=cache.manifest["modality"]) if args.augment else None)
    train_s = time.perf_counter() - t0
    model, _ = load_segmenter(f"{args.run_dir}/segmenter.pt", device=device)
    cached = segmentation_scores(predict(model, cache.images[test]), cache, test)

    # the held-out patients' own files, segmented as a user would
    source = dataset_dir(args.dataset, args.data_dir)
    if source is None:
        raise SystemExit("segment_acdc.py segments the original files of a real dataset: use --dataset acdc")
    patients = sorted(set(cache.slices.patient_id.to_numpy()[test]))
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "input"
        inputs.mkdir()
        for pid in patients:
            src = next(source.rglob(pid))
            (inputs / pid).mkdir()
            for f in src.glob(f"{pid}_frame[0-9][0-9].nii.gz"):  # the ED/ES frames (training folders hold only those)
                os.symlink(f.resolve(), inputs / pid / f.name)
        t1 = time.perf_counter()
        segment_folder(f"{args.run_dir}/segmenter.pt", inputs, Path(args.run_dir) / "predictions", device=device,
                       progress_bar=False)
        segment_s = time.perf_counter() - t1
        native = evaluate_folders(Path(args.run_dir) / "predictions", _truth_root(source, patients))
    result = {
        "benchmark": "segment",
        "dataset": args.dataset,
        "image_size": args.image_size,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "augment": args.augment,
        "epochs": int(hist.epoch.max()),
        "train_s_this_call": round(train_s, 1),
        "test_patients": len(patients),
        "dice_cache_space": cached.groupby("structure").dice.mean().round(4).to_dict(),
        "dice_cache_space_mean": round(float(cached.dice.mean()), 4),
        "dice_native": native.groupby("structure").dice.mean().round(4).to_dict(),
        "dice_native_mean": round(float(native.dice.mean()), 4),
        "hd95_native_mm": native.groupby("structure").hd95_mm.mean().round(2).to_dict(),
        "segment_s_per_volume": round(segment_s / max(1, native.file.nunique()), 2),
    }
    print(json.dumps(result))
    return 0


def _truth_root(source: Path, patients: list[str]) -> Path:
    """The folder whose ``patientXXX/`` sub-folders hold these patients' ``_gt`` files."""
    first = next(source.rglob(patients[0]))
    return first.parent


if __name__ == "__main__":
    raise SystemExit(main())
