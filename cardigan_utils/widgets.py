"""ipywidgets viewers for the notebooks."""

from __future__ import annotations

import os
from typing import Sequence

import ipywidgets as w
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import display

from .data import Case, dataset_specs
from .images import ImageGenerator
from .labels import label_image
from .viz import legend_handles, overlay


class CaseViewer:
    """Browse Cases: patient, phase (and view), slice, overlay opacity.

    The state lives in plain attributes and :meth:`render` draws it, so the viewer is testable
    without a browser; :attr:`widget` is the ipywidgets box to display. Its CSS classes
    (``cardigan-case-viewer`` on the box, ``cardigan-slice`` on the slice slider, ``cardigan-figure``
    on the output) are what tests/test_browser.py selects on: keep them stable.

    Args:
        cases: the Cases to browse.
        size: figure side in inches.
    """

    def __init__(self, cases: Sequence[Case], *, size: float = 4.5) -> None:
        if not cases:
            raise ValueError("CaseViewer needs at least one case")
        self.cases = {c.key: c for c in cases}
        self.size = size
        patients = list(dict.fromkeys(c.patient_id for c in cases))
        variants = list(dict.fromkeys(c.key.removeprefix(c.patient_id + "_") for c in cases))
        self.patient = w.Dropdown(options=patients, description="patient")
        self.variant = w.ToggleButtons(options=variants, description="phase")
        self.slice = w.IntSlider(min=0, max=0, description="slice", continuous_update=True)
        self.alpha = w.FloatSlider(value=0.4, min=0, max=1, step=0.05, description="overlay")
        self.output = w.Output()
        for control in (self.patient, self.variant, self.slice, self.alpha):
            control.observe(self._changed, names="value")
        self.widget = w.VBox([w.HBox([self.patient, self.variant]), w.HBox([self.slice, self.alpha]), self.output])
        self.widget.add_class("cardigan-case-viewer")
        self.slice.add_class("cardigan-slice")
        self.output.add_class("cardigan-figure")
        self._update_slider()
        self.render()

    @property
    def case(self) -> Case:
        """The Case shown now."""
        key = f"{self.patient.value}_{self.variant.value}"
        return self.cases.get(key) or next(c for c in self.cases.values() if c.patient_id == self.patient.value)

    def _update_slider(self) -> None:
        n = self.case.image.shape[2]
        self.slice.max = n - 1
        if self.slice.value > n - 1 or self.slice.value == 0:
            self.slice.value = n // 2

    def _changed(self, change) -> None:
        if change["owner"] in (self.patient, self.variant):
            self._update_slider()
        self.render()

    def current_slice(self) -> tuple[np.ndarray, np.ndarray]:
        """The displayed (image, label), rows = y as in the cache."""
        z = min(self.slice.value, self.case.image.shape[2] - 1)
        return self.case.image[:, :, z].T, self.case.label[:, :, z].T

    def render(self):
        """Redraw the current slice into the output area.

        Returns:
            The Figure drawn.
        """
        image, label = self.current_slice()
        case = self.case
        fig, ax = plt.subplots(figsize=(self.size, self.size * image.shape[0] / image.shape[1]))
        overlay(ax, image, label, alpha=self.alpha.value,
                title=f"{case.key}  slice {self.slice.value}  ({case.spacing[0]:.2f} x {case.spacing[1]:.2f} mm)")
        ax.legend(handles=legend_handles(case.modality), loc="lower right", fontsize=7, framealpha=0.6)
        self.output.clear_output(wait=True)
        with self.output:
            display(fig)
        plt.close(fig)
        self.figure = fig
        return fig


def case_viewer(cases: Sequence[Case], *, size: float = 4.5):
    """An interactive viewer of ``cases`` (see :class:`CaseViewer`).

    Args:
        cases: the Cases to browse.
        size: figure side in inches.

    Returns:
        The :class:`CaseViewer`; display ``viewer.widget``.
    """
    return CaseViewer(cases, size=size)


def dataset_chooser(value: str = "phantom-mri"):
    """A dropdown of the kit's datasets with a line saying which are available here.

    Args:
        value: the dataset selected at first (the notebook's ``dataset`` parameter).

    Returns:
        ``(dropdown, box)``: read ``dropdown.value``; display ``box``.
    """
    def status(spec) -> str:
        if not spec.needs_folder:
            return "built in"
        var = spec.env_var
        return f"{var}={os.environ[var]}" if os.environ.get(var) else f"not configured (set {var})"

    specs = dataset_specs()
    dropdown = w.Dropdown(options=[s.name for s in specs], value=value, description="dataset")
    note = w.HTML("<br>".join(f"<b>{s.name}</b>: {status(s)}" for s in specs))
    return dropdown, w.VBox([dropdown, note])


class LatentExplorer:
    """Sliders on the main directions of a shape VAE's latent space; the decoded shape redraws.

    CSS classes for tests/test_browser.py (keep them stable): ``cardigan-latent-explorer`` on the box,
    ``cardigan-latent-slider`` on each slider, ``cardigan-figure`` on the output.

    Args:
        model: a trained :class:`~cardigan_utils.networks.vae.ShapeVAE`.
        mean: (D,) centre of the codes (e.g. the mean training code).
        directions: (k, D) unit directions (e.g. principal components).
        std: (k,) spread along each direction; sliders span +-3 std.
        modality: for the legend.
    """

    def __init__(self, model, mean, directions, std, *, modality: str = "mri") -> None:
        self.model, self.mean, self.directions, self.std = model, np.asarray(mean), np.asarray(directions), np.asarray(std)
        self.modality = modality
        self.sliders = [
            w.FloatSlider(value=0.0, min=-3.0, max=3.0, step=0.1, description=f"PC{i + 1} (σ)", continuous_update=False)
            for i in range(len(self.directions))
        ]
        self.output = w.Output()
        for s in self.sliders:
            s.observe(lambda change: self.render(), names="value")
            s.add_class("cardigan-latent-slider")
        self.widget = w.HBox([w.VBox(self.sliders), self.output])
        self.widget.add_class("cardigan-latent-explorer")
        self.output.add_class("cardigan-figure")
        self.render()

    def code(self) -> np.ndarray:
        """The latent code the sliders point at."""
        weights = np.array([s.value for s in self.sliders]) * self.std
        return self.mean + weights @ self.directions

    def decoded(self) -> np.ndarray:
        """The label map decoded from :meth:`code`."""
        device = next(self.model.parameters()).device
        z = torch.as_tensor(self.code(), dtype=torch.float32, device=device)[None]
        return self.model.decode_labels(z)[0].cpu().numpy()

    def render(self):
        """Redraw the decoded shape.

        Returns:
            The Figure drawn.
        """
        label = self.decoded()
        fig, ax = plt.subplots(figsize=(3.4, 3.4))
        ax.imshow(label_image(label), interpolation="nearest")
        ax.set_axis_off()
        ax.legend(handles=legend_handles(self.modality), loc="lower right", fontsize=7)
        self.output.clear_output(wait=True)
        with self.output:
            display(fig)
        plt.close(fig)
        self.figure, self.label = fig, label
        return fig


def latent_explorer(model, mean, directions, std, *, modality: str = "mri") -> LatentExplorer:
    """An interactive latent-space explorer (see :class:`LatentExplorer`).

    Args:
        model: a trained shape VAE.
        mean: (D,) centre code.
        directions: (k, D) unit directions.
        std: (k,) spread along each direction.
        modality: for the legend.

    Returns:
        The :class:`LatentExplorer`; display ``explorer.widget``.
    """
    return LatentExplorer(model, mean, directions, std, modality=modality)


class GeneratorViewer:
    """Pick a label map of a slice cache and see its real image beside a generated one; new styles on demand.

    The slider chooses the slice; "new style" draws a new style code (multi-modal generators;
    a generator without style codes renders every label map one way only, and says so).

    Args:
        generator: a trained :class:`~cardigan_utils.images.contract.ImageGenerator`.
        cache: the :class:`~cardigan_utils.data.cache.SliceCache` to pick label maps from.
        split: which split's slices the slider walks through.
        seed: first style seed.
    """

    def __init__(self, generator: ImageGenerator, cache, *, split: str = "test", seed: int = 0) -> None:
        self.generator, self.cache = generator, cache
        self.indices = cache.indices(split)
        if len(self.indices) == 0:
            raise ValueError(f"the cache has no {split!r} slices to show")
        self.seed = seed
        self.slider = w.IntSlider(value=0, min=0, max=len(self.indices) - 1, description="slice", continuous_update=False)
        self.button = w.Button(description="new style", disabled=not generator.style_dim,
                               tooltip="draw a new style code" if generator.style_dim else "this generator has no style code")
        self.output = w.Output()
        self.slider.observe(lambda change: self.render(), names="value")
        self.button.on_click(self._new_style)
        self.widget = w.VBox([w.HBox([self.slider, self.button]), self.output])
        self.render()

    def _new_style(self, _button=None) -> None:
        self.seed += 1
        self.render()

    def generated(self) -> np.ndarray:
        """The image generated from the chosen label map with the current style seed."""
        i = self.indices[self.slider.value]
        label = torch.from_numpy(np.array(self.cache.labels[i : i + 1]))
        return self.generator.render(label, styles=self.generator.sample_styles(1, seed=self.seed))[0]

    def render(self):
        """Redraw label map, real image and generated image.

        Returns:
            The Figure drawn.
        """
        i = self.indices[self.slider.value]
        label, real, fake = self.cache.labels[i], self.cache.images[i], self.generated()
        fig, axes = plt.subplots(1, 3, figsize=(8.4, 3.0))
        axes[0].imshow(label_image(label), interpolation="nearest")
        axes[1].imshow(real, cmap="gray", vmin=0, vmax=1)
        axes[2].imshow(fake, cmap="gray", vmin=0, vmax=1)
        for ax, title in zip(axes, ("label map", "real", f"generated (style {self.seed})" if self.generator.style_dim else "generated")):
            ax.set_axis_off()
            ax.set_title(title, fontsize=9)
        self.output.clear_output(wait=True)
        with self.output:
            display(fig)
        plt.close(fig)
        self.figure, self.image = fig, fake
        return fig


def generator_viewer(generator: ImageGenerator, cache, *, split: str = "test", seed: int = 0) -> GeneratorViewer:
    """An interactive label-map-to-image viewer (see :class:`GeneratorViewer`).

    Args:
        generator: a trained image generator (:func:`~cardigan_utils.images.load_generator`).
        cache: the slice cache to pick label maps from.
        split: which split's slices to show.
        seed: first style seed.

    Returns:
        The :class:`GeneratorViewer`; display ``viewer.widget``.
    """
    return GeneratorViewer(generator, cache, split=split, seed=seed)
