#!/usr/bin/env python
"""Write built-in phantom patients in an official layout (ACDC for MRI; CAMUS for echo; any registered dataset's).

    .venv/bin/python data_scripts/make_phantom.py --modality mri --n-patients 20 --out runs/phantom_acdc
    .venv/bin/python data_scripts/make_phantom.py --modality echo --layout camus-mhd --out runs/phantom_camus
    .venv/bin/python data_scripts/make_phantom.py --dataset sunnybrook --n-patients 4 --out runs/phantom_scd
"""

import argparse
import sys


def _write_example(args: argparse.Namespace) -> int:
    """``--dataset NAME``: the dataset's own example writer, into a folder that is new or empty."""
    from pathlib import Path

    from cardigan_utils.data import get_dataset

    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        print(f"error: {out} is not empty; give a new folder for the {args.dataset} phantom", file=sys.stderr)
        return 1
    spec = get_dataset(args.dataset)
    try:
        source = spec.write_example(out, n_patients=args.n_patients, seed=args.seed, layout=args.layout)
    except ValueError as err:  # an unknown layout
        print("error: " + " ".join(str(err).split()), file=sys.stderr)
        return 1
    print(f"wrote {args.n_patients} phantom patients as {args.dataset} to {source} "
          f"(set {spec.env_var} to it to read it as that dataset)")
    return 0


def main(argv=None) -> int:
    from cardigan_utils.data import dataset_specs
    from cardigan_utils.data.cache import split_patients
    from cardigan_utils.data.export import LAYOUTS, write_dataset
    from cardigan_utils.data.phantom import phantom_cases
    from cardigan_utils.runs import describe_os_error

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--modality", choices=("mri", "echo"), default="mri")
    p.add_argument("--layout", default=None, help="acdc (mri); camus-nifti or camus-mhd (echo)")
    p.add_argument("--n-patients", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="dataset folder to create")
    p.add_argument("--test-fraction", type=float, default=0.2, help="patients written as the testing split")
    p.add_argument("--overwrite", action="store_true",
                   help="replace phantom files this script wrote there before (never anyone else's files)")
    p.add_argument("--dataset", default=None, choices=[s.name for s in dataset_specs() if s.needs_folder],
                   help="write the phantom as this registered dataset's example instead (its own layout, e.g. M&Ms' "
                        "4-D cines and information CSV, Sunnybrook's DICOM series and contour files); "
                        "--layout picks among its layouts")
    args = p.parse_args(argv)
    if args.dataset is not None:
        return _write_example(args)
    layout = args.layout or LAYOUTS[args.modality][0]
    cases = phantom_cases(f"phantom-{args.modality}", args.n_patients, seed=args.seed)
    splits = split_patients([c.patient_id for c in cases], val_fraction=0.0, test_fraction=args.test_fraction, seed=args.seed)
    try:
        out = write_dataset(cases, args.out, layout=layout, splits=splits, overwrite=args.overwrite)
    except (ValueError, OSError) as err:  # the kit's own FileExistsError carries a message and no errno
        message = describe_os_error(err) if isinstance(err, OSError) and err.errno is not None else str(err)
        print("error: " + " ".join(message.split()), file=sys.stderr)
        return 1
    print(f"wrote {args.n_patients} phantom patients ({layout}) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
