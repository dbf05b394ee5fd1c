"""Stage 5: the segmentation U-Net: training, prediction and loading (:mod:`.train`); segmenting and
scoring whole folders of volumes in their own geometry (:mod:`.folders`, behind ``cardigan segment``
and ``cardigan evaluate``)."""

from .folders import (
    evaluate_folders,
    find_images,
    from_model_space,
    prediction_path,
    segment_dataset,
    segment_folder,
    segment_volume,
    to_model_space,
)
from .train import data_config, load_segmenter, predict, train_segmenter

__all__ = [
    "data_config",
    "evaluate_folders",
    "find_images",
    "from_model_space",
    "load_segmenter",
    "predict",
    "prediction_path",
    "segment_dataset",
    "segment_folder",
    "segment_volume",
    "to_model_space",
    "train_segmenter",
]
