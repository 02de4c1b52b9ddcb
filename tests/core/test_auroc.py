"""auroc (the world model's success AUROC): known values, ties, one class."""

from __future__ import annotations

import numpy as np
import pytest

from fog_pipeline.core.world_model.evaluation import auroc


def pairwise_auroc(scores, labels) -> float:
    """The definition: the share of (positive, negative) pairs ranked right, ties half."""
    labels = np.asarray(labels, bool)
    positive, negative = np.asarray(scores)[labels], np.asarray(scores)[~labels]
    wins = (positive[:, None] > negative[None, :]).sum()
    ties = (positive[:, None] == negative[None, :]).sum()
    return (wins + ties / 2) / (len(positive) * len(negative))


@pytest.mark.parametrize(
    ("scores", "labels", "expected"),
    [
        ([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], 1.0),  # positives all above
        ([0.8, 0.9, 0.1, 0.2], [0, 0, 1, 1], 0.0),  # all below
        ([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], 0.75),  # one pair of four the wrong way
        ([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1], 0.5),  # a constant score knows nothing
        ([1.0, 1.0], [1, 0], 0.5),  # a tie across the classes counts half
        ([0.0, 1.0, 1.0], [0, 0, 1], 0.75),  # beats one negative, ties the other
        ([3.0, 3.0, 1.0, 2.0], [1, 1, 0, 0], 1.0),  # ties within a class change nothing
    ],
)
def test_known_values(scores, labels, expected):
    assert auroc(np.array(scores), np.array(labels)) == pytest.approx(expected)


def test_matches_the_pairwise_definition_with_many_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        scores = rng.integers(0, 4, size=30).astype(np.float64)  # few values: many ties
        labels = rng.random(30) < 0.4
        if labels.all() or not labels.any():
            continue
        assert auroc(scores, labels) == pytest.approx(pairwise_auroc(scores, labels))


def test_depends_only_on_the_order_of_scores():
    rng = np.random.default_rng(1)
    scores, labels = rng.normal(size=25), rng.random(25) < 0.5
    value = auroc(scores, labels)
    assert auroc(np.exp(3 * scores), labels) == pytest.approx(value)  # monotone transform
    order = rng.permutation(25)
    assert auroc(scores[order], labels[order]) == pytest.approx(value)  # sample order
    assert auroc(-scores, labels) == pytest.approx(1 - value)  # reversed ranking


@pytest.mark.parametrize("labels", [[1, 1, 1], [0, 0, 0], [True], []])
def test_one_class_has_no_auroc(labels):
    scores = np.linspace(0, 1, len(labels))
    assert auroc(scores, np.array(labels, dtype=bool)) is None
