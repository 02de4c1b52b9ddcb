"""Robot evaluation: closed-loop episodes, confidence intervals, summaries and figures.

Plain NumPy/pandas/matplotlib (no Kedro): the ``evaluation`` pipeline calls it, and so
can a notebook or a benchmark.
"""

from fog_pipeline.core.evaluation.report import (
    EFFICIENCY_COLUMNS,
    MEAN_MEASURES,
    PAIRED_MEASURES,
    aggregate,
    comparison_figure,
    comparisons,
    paired_difference,
    paired_differences,
    sample_efficiency_figure,
    sample_efficiency_row,
)
from fog_pipeline.core.evaluation.rollout import (
    EPISODE_COLUMNS,
    BackendPolicyAdapter,
    EpisodeError,
    EpisodeVideo,
    EvaluationPolicy,
    PolicyEvaluation,
    RandomPolicy,
    evaluate_policy,
    write_gif,
)
from fog_pipeline.core.evaluation.stats import mean_interval, student_t_quantile, wilson_interval

__all__ = [
    "EFFICIENCY_COLUMNS",
    "EPISODE_COLUMNS",
    "MEAN_MEASURES",
    "PAIRED_MEASURES",
    "BackendPolicyAdapter",
    "EpisodeError",
    "EpisodeVideo",
    "EvaluationPolicy",
    "PolicyEvaluation",
    "RandomPolicy",
    "aggregate",
    "comparison_figure",
    "comparisons",
    "evaluate_policy",
    "mean_interval",
    "paired_difference",
    "paired_differences",
    "sample_efficiency_figure",
    "sample_efficiency_row",
    "student_t_quantile",
    "wilson_interval",
    "write_gif",
]
