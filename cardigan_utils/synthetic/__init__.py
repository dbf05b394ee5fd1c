"""Stage 4: unlimited labelled synthetic sets. Generation in resumable shards (:mod:`.generate`),
exports as a slice cache, nnU-Net, ACDC and cardiGAN HDF5 layouts (:mod:`.export`), the recipe
notebook 04 and ``cardigan generate`` both call (:mod:`.recipe`), how a set is judged against
real images (:mod:`.quality`), and which of those judgements ranks GANs as the downstream Dice does
(:mod:`.agreement`)."""

from .agreement import metric_agreement
from .export import to_acdc_layout, to_cache, to_cardigan_hdf5, to_nnunet
from .generate import generate_dataset, generate_pairs, iter_shards, load_synthetic, models_fingerprint, read_manifest
from .quality import extrapolation_spread, feature_network, feature_network_path, judge_synthetic
from .recipe import GENERATE_PARAMETERS, generation_parameters, make_synthetic_set

__all__ = [
    "GENERATE_PARAMETERS",
    "generate_dataset",
    "extrapolation_spread",
    "feature_network",
    "feature_network_path",
    "generate_pairs",
    "generation_parameters",
    "iter_shards",
    "judge_synthetic",
    "load_synthetic",
    "make_synthetic_set",
    "metric_agreement",
    "models_fingerprint",
    "read_manifest",
    "to_acdc_layout",
    "to_cache",
    "to_cardigan_hdf5",
    "to_nnunet",
]
