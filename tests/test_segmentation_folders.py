"""Segmenting volumes of any size and spacing: the cut into model space and back is the identity on labels."""

import numpy as np
import pytest
import torch

from cardigan_utils.data import load_cases
from cardigan_utils.segmentation import from_model_space, segment_volume, to_model_space


def _dice(a, b, k):
    return 2 * ((a == k) & (b == k)).sum() / max(1, (a == k).sum() + (b == k).sum())


@pytest.fixture(scope="module")
def case():
    return load_cases("phantom-mri", n_patients=1)[0]


@pytest.mark.parametrize("image_size", [64, 128])
def test_round_trip_restores_the_labels(case, image_size):
    _, lab, geometry = to_model_space(case.image, case.spacing, image_size=image_size, fov_mm=160.0,
                                      center=None, label=case.label)
    back = from_model_space(lab, geometry)
    assert back.shape == case.label.shape and back.dtype == np.uint8
    for k in (1, 2, 3):  # resampling to 160/size mm and back blurs boundaries by a pixel at most
        assert _dice(back, case.label, k) > (0.9 if image_size == 64 else 0.95)


def test_round_trip_with_odd_sizes_spacings_and_an_off_centre_heart(case):
    # an anisotropic, differently sized volume with the heart near a corner
    image = np.pad(case.image, ((0, 37), (21, 0), (0, 0)), mode="constant")
    label = np.pad(case.label, ((0, 37), (21, 0), (0, 0)), mode="constant")
    spacing = (case.spacing[0] * 0.8, case.spacing[1] * 1.3, case.spacing[2])
    fg = np.argwhere(np.transpose(label, (2, 1, 0)) > 0)[:, 1:].mean(axis=0)
    _, lab, geometry = to_model_space(image, spacing, image_size=128, fov_mm=160.0, center=tuple(fg), label=label)
    back = from_model_space(lab, geometry)
    assert back.shape == label.shape
    assert all(_dice(back, label, k) > 0.93 for k in (1, 2, 3))


def test_echo_is_resized_whole_and_back():
    rng = np.random.default_rng(0)
    label = np.zeros((90, 70, 1), np.uint8)
    label[20:60, 15:50] = 1
    label[30:50, 25:40] = 2
    _, lab, geometry = to_model_space(rng.random((90, 70, 1)), (0.3, 0.3, 1.0), image_size=64, fov_mm=None, label=label)
    assert lab.shape == (1, 64, 64) and geometry.center is None
    back = from_model_space(lab, geometry)
    assert back.shape == label.shape and _dice(back, label, 2) > 0.9


class _Oracle(torch.nn.Module):
    """A stand-in model that 'predicts' a disc at the centre of its input: where the crop was put."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        n, _, h, w = x.shape
        yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        disc = ((yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2 < (h / 8) ** 2).float()  # centred on the pixel grid
        logits = torch.stack([1 - disc, torch.zeros_like(disc), torch.zeros_like(disc), disc])
        return logits[None].expand(n, -1, -1, -1) + self.w


@pytest.mark.parametrize("image_size", [64, 128])
def test_segment_volume_returns_the_source_geometry(case, image_size):
    for passes in (1, 2):
        out = segment_volume(_Oracle(), case.image, case.spacing, image_size=image_size, passes=passes)
        assert out.shape == case.image.shape and set(np.unique(out)) <= {0, 3}
        # the disc sits at the centre of the first crop (the image centre); a second pass centres on it
        # again: less than a source pixel of drift per pass (odd crop sizes round by half a pixel)
        fg = np.argwhere(out[..., 0] > 0).mean(axis=0)
        assert np.allclose(fg, np.array(case.image.shape[:2]) / 2, atol=passes)
