#!/usr/bin/env python
"""Verify a Sunnybrook Cardiac Data folder (DICOM + expert contours + the per-case table) and convert it.

    .venv/bin/python data_scripts/prepare_sunnybrook.py ~/data/TrainingDataContours --run-dir runs/sunnybrook

The folder holds the case folders (SC-HF-I-01/contours-manual/IRCCI-expert/) and sunnybrook_series.csv,
the table naming each case's DICOM folder and series (see cardigan_utils.data.sunnybrook).
Exit status: 0 all cases read, 2 some skipped (listed), 1 nothing usable.
"""

import sys

from _common import prepare_main

if __name__ == "__main__":
    sys.exit(prepare_main("sunnybrook"))
