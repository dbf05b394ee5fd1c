"""cardigan_utils: the package behind the CardiGAN kit's notebooks.

All logic lives here; the notebooks call it in a few lines. The README's "Layout" section shows
the modules, one folder per stage of the study.
"""

__version__ = "0.1.0"
