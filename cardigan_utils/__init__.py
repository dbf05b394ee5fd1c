"""cardigan_utils: the package behind the CardiGAN kit's notebooks.

All logic lives here; the notebooks call it in a few lines. See DESIGN.md for the layout.
"""

__version__ = "0.1.0"
