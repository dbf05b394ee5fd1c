#!/usr/bin/env python
"""Verify a CAMUS download (NIfTI re-release or legacy .mhd; archive or folder) and convert it.

    .venv/bin/python data_scripts/prepare_camus.py ~/Downloads/CAMUS_public.zip --run-dir runs/camus --image-size 256

Exit status: 0 all patients read, 2 some skipped (listed), 1 nothing usable.
"""

import sys

from _common import prepare_main

if __name__ == "__main__":
    sys.exit(prepare_main("camus"))
