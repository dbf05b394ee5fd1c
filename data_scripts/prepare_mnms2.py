#!/usr/bin/env python
"""Verify an M&Ms-2 download (archive or folder: dataset/ and dataset_information.csv) and convert it.

    .venv/bin/python data_scripts/prepare_mnms2.py ~/Downloads/MnM2.zip --run-dir runs/mnms2 --image-size 128

Exit status: 0 all patients read, 2 some skipped (listed), 1 nothing usable.
"""

import sys

from _common import prepare_main

if __name__ == "__main__":
    sys.exit(prepare_main("mnms2"))
