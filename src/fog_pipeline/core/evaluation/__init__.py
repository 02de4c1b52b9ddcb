"""Robot evaluation: closed-loop episodes (on one robot or a pool of simulated ones),
confidence intervals, summaries and figures.

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
from fog_pipeline.core.evaluation.robots import SimulatorPool, evaluation_robots
from fog_pipeline.core.evaluation.rollout import (
    EPISODE_COLUMNS,
    BackendPolicyAdapter,
    BatchEvaluationPolicy,
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
    "BatchEvaluationPolicy",
    "EpisodeError",
    "EpisodeVideo",
    "EvaluationPolicy",
    "PolicyEvaluation",
    "RandomPolicy",
    "SimulatorPool",
    "aggregate",
    "comparison_figure",
    "comparisons",
    "evaluate_policy",
    "evaluation_robots",
    "mean_interval",
    "paired_difference",
    "paired_differences",
    "sample_efficiency_figure",
    "sample_efficiency_row",
    "student_t_quantile",
    "wilson_interval",
    "write_gif",
]
