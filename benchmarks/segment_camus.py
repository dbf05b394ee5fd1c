#!/usr/bin/env python
"""Real-only U-Net on CAMUS: train on the official training subgroup, score the validation subgroup; one JSON line.

    CARDIGAN_CAMUS_DIR=../shared/data/CAMUS_224 .venv/bin/python benchmarks/segment_camus.py \
        --image-size 128 --max-epochs 60 --augment --run-dir runs/segment_camus

The 400 patients of ``database_split/subgroup_training.txt`` are cut into 360 for training and 40
for validation (model selection); the 50 of ``subgroup_validation.txt`` are never seen in training
and are scored two ways (the official testing subgroup is not in the derived copies):

1. In the cache's space: Dice per frame (ED and ES, 2CH and 4CH) on the slices as the U-Net sees them.
2. In the frames' own geometry, as a user would: ``cardigan segment`` on the patients' image files
   and ``cardigan evaluate`` against their ``_gt`` files (HD95 in pixels when the copy's spacing
   is the 1.0 mm placeholder).

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

    from _common import dataset_parser
    from cardigan_utils.augment import augment_batch
    from cardigan_utils.config import get_device, set_seed
    from cardigan_utils.data import build_cache, cache_dir, dataset_dir
    from cardigan_utils.data.camus import list_camus_patients, read_camus
    from cardigan_utils.metrics import segmentation_scores
    from cardigan_utils.segmentation import (data_config, evaluate_folders, load_segmenter, predict, segment_folder,
                                             train_segmenter)

    p = dataset_parser(__doc__.splitlines()[0], run_dir="runs/segment_camus")
    p.add_argument("--max-epochs", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--augment", action="store_true", help="classical augmentation (augment.augment_batch)")
    p.set_defaults(dataset="camus")
    args = p.parse_args(argv)
    set_seed(args.seed)
    device = get_device(args.device)
    root = dataset_dir("camus", args.data_dir)
    if root is None:
        raise SystemExit("segment_camus.py needs the CAMUS folder: --data-dir or CARDIGAN_CAMUS_DIR")
    size = args.image_size
    train_cases = read_camus(root, split="training")
    cache = build_cache(train_cases, cache_dir(args.run_dir, "camus-training", size), image_size=size,
                        val_fraction=0.1, test_fraction=0.0, seed=args.seed, overwrite=True, progress=False)
    test_cases = read_camus(root, split="validation")
    test_cache = build_cache(test_cases, cache_dir(args.run_dir, "camus-validation", size), image_size=size,
                             val_fraction=0.0, test_fraction=0.0, seed=args.seed, overwrite=True, progress=False)
    train, val = cache.indices("train"), cache.indices("val")
    t0 = time.perf_counter()
    hist = train_segmenter([(cache.images[train], cache.labels[train])], val=(cache.images[val], cache.labels[val]),
                           run_dir=args.run_dir, max_epochs=args.max_epochs, batch_size=args.batch_size,
                           data=data_config(cache), device=device, seed=args.seed,
                           augment=functools.partial(augment_batch, modality="echo") if args.augment else None)
    train_s = time.perf_counter() - t0
    model, _ = load_segmenter(f"{args.run_dir}/segmenter.pt", device=device)
    everything = test_cache.indices()
    cached = segmentation_scores(predict(model, test_cache.images[everything]), test_cache, everything)

    # the held-out patients' own files, segmented and scored as a user would
    patients = list_camus_patients(root, split="validation")
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "input"
        for folder in patients:
            (inputs / folder.name).mkdir(parents=True)
            for f in folder.glob(f"{folder.name}_[24]CH_E[DS].nii.gz"):  # the frames, not their _gt files
                os.symlink(f.resolve(), inputs / folder.name / f.name)
        t1 = time.perf_counter()
        segment_folder(f"{args.run_dir}/segmenter.pt", inputs, Path(args.run_dir) / "predictions", device=device,
                       progress_bar=False)
        segment_s = time.perf_counter() - t1
        native = evaluate_folders(Path(args.run_dir) / "predictions", patients[0].parent)
    distance = "hd95_mm" if native.hd95_mm.notna().any() else "hd95_px"
    result = {
        "benchmark": "segment",
        "dataset": "camus",
        "data_dir": str(root),
        "image_size": size,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "augment": args.augment,
        "epochs": int(hist.epoch.max()),
        "train_patients": int(cache.slices.loc[train, "patient_id"].nunique()),
        "train_s_this_call": round(train_s, 1),
        "test_patients": len(patients),
        "test_frames": int(native.file.nunique()),
        "dice_cache_space": cached.groupby("structure").dice.mean().round(4).to_dict(),
        "dice_cache_space_mean": round(float(cached.dice.mean()), 4),
        "dice_native": native.groupby("structure").dice.mean().round(4).to_dict(),
        "dice_native_mean": round(float(native.dice.mean()), 4),
        "dice_native_by_view_phase": {f"{view}_{phase}": round(float(dice), 4) for (view, phase), dice in native.assign(
            view=native.file.str.extract(r"_(\dCH)_")[0], phase=native.file.str.extract(r"_(E[DS])_gt")[0])
            .groupby(["view", "phase"]).dice.mean().items()},
        f"{distance}_native": native.groupby("structure")[distance].mean().round(2).to_dict(),
        "segment_s_per_frame": round(segment_s / max(1, native.file.nunique()), 3),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
