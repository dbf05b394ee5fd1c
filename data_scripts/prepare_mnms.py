#!/usr/bin/env python
"""Verify an M&Ms-1 download (archive or folder: Training/, Validation/, Testing/ and the information CSV) and convert it.

    .venv/bin/python data_scripts/prepare_mnms.py ~/Downloads/OpenDataset.zip --run-dir runs/mnms --image-size 128

Exit status: 0 all patients read, 2 some skipped (listed), 1 nothing usable.
"""

import sys

from _common import prepare_main

if __name__ == "__main__":
    sys.exit(prepare_main("mnms"))
