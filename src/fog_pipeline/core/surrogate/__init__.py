"""The local surrogate S: a small latent RSSM, its training, and gradient-fidelity checks."""

from fog_pipeline.core.surrogate.fidelity import (
    directional_cosine,
    directional_derivatives,
    finite_difference,
    gradient_cosine,
    jacobian_vector_product,
    latent_transition_cosine,
    scalar_fidelity,
)
from fog_pipeline.core.surrogate.rssm import (
    RSSM,
    LatentState,
    RSSMConfig,
    gaussian_kl,
    kl_loss,
    straight_through,
)
from fog_pipeline.core.surrogate.training import (
    NonFiniteLossError,
    SequenceReplay,
    SurrogateTrainer,
    SurrogateTrainingConfig,
    batch_from_windows,
    prepare_batch,
)

__all__ = [
    "RSSM",
    "LatentState",
    "NonFiniteLossError",
    "RSSMConfig",
    "SequenceReplay",
    "SurrogateTrainer",
    "SurrogateTrainingConfig",
    "batch_from_windows",
    "directional_cosine",
    "directional_derivatives",
    "finite_difference",
    "gaussian_kl",
    "gradient_cosine",
    "jacobian_vector_product",
    "kl_loss",
    "latent_transition_cosine",
    "prepare_batch",
    "scalar_fidelity",
    "straight_through",
]
