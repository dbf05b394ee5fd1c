"""Stage 5's study: one U-Net per regime x share of real patients x seed, scored in and out of domain.

Running it (:mod:`.run`), its results table and regimes (:mod:`.results`), shards over processes and
their merge (:mod:`.shards`), the paper's tables, the generalisation table and the verdicts
(:mod:`.analysis`), and its plots (:mod:`.plots`).
"""

from .analysis import (
    clinical_table,
    compare_with_papers,
    describe_study,
    disagreements,
    fidelity_beside_dice,
    generalisation_table,
    generalisation_verdict,
    low_data_differences,
    paired_difference,
    paper_table,
    run_means,
    summary_table,
)
from .plots import regime_predictions, study_boxes, study_points
from .results import (
    REGIMES,
    RUN_KEYS,
    Regime,
    check_regimes,
    read_results,
    regime_parts,
    results_path,
    synthetic_baseline,
)
from .run import (
    regime_augment,
    run_path,
    run_sources,
    run_study,
    study_domains,
    study_inputs,
    training_patients,
    vendor_domains,
)
from .shards import merge_shards, parse_shard, shard_runs

__all__ = [
    "REGIMES",
    "RUN_KEYS",
    "check_regimes",
    "clinical_table",
    "compare_with_papers",
    "describe_study",
    "disagreements",
    "fidelity_beside_dice",
    "generalisation_table",
    "generalisation_verdict",
    "low_data_differences",
    "merge_shards",
    "paired_difference",
    "paper_table",
    "parse_shard",
    "read_results",
    "Regime",
    "regime_augment",
    "regime_parts",
    "regime_predictions",
    "results_path",
    "run_means",
    "run_path",
    "run_sources",
    "run_study",
    "shard_runs",
    "study_boxes",
    "study_domains",
    "study_inputs",
    "study_points",
    "summary_table",
    "synthetic_baseline",
    "training_patients",
    "vendor_domains",
]
