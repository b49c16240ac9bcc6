"""Under split.groups the champion comparison resamples whole groups, like the split."""

from __future__ import annotations

import numpy as np

from tasks.serving.champion import bootstrap_weight_blocks


def test_group_resamples_weigh_every_row_of_a_group_alike() -> None:
    groups = np.repeat(np.array(["a", "b", "c", "d", "e"]), 4)
    [block] = bootstrap_weight_blocks(len(groups), 50, seed=3, groups=groups)
    assert block.shape == (50, 20)
    for name in "abcde":
        rows = block[:, groups == name]
        assert (rows == rows[:, :1]).all()
    assert (block.sum(axis=1) == 20).all()  # five groups of four drawn five times


def test_row_resamples_are_the_seeded_row_draws_without_groups() -> None:
    [plain] = bootstrap_weight_blocks(30, 10, seed=1)
    drawn = np.random.default_rng(1).integers(0, 30, size=(10, 30))
    expected = np.stack([np.bincount(row, minlength=30) for row in drawn])
    assert (plain == expected).all()
