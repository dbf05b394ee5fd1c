#!/usr/bin/env python
"""Verify an ACDC download (archive or folder) and convert it to the slice cache.

    .venv/bin/python data_scripts/prepare_acdc.py ~/Downloads/ACDC.zip --run-dir runs/acdc --image-size 128

Exit status: 0 all patients read, 2 some skipped (listed), 1 nothing usable.
"""

import sys

from _common import prepare_main

if __name__ == "__main__":
    sys.exit(prepare_main("acdc"))
