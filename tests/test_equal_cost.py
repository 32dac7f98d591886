"""PPO beside RLOO at equal cost (issue 36, item 4): notebook 06's table counts PPO's optimiser
steps per batch as batch_size / mini_batch_size x ppo_epochs, and the setting its caption names
(mini_batch_size = batch_size, ppo_epochs = 1) makes it one, as RLOO's. Read from trl's own
optimiser after notebook 04 trained: Adam counts every step it takes."""

import pytest

from detox_helpers.unattended import run_notebook_here

SMALL = dict(batch_size=4, checkpoint_every=2, output_min_length=8, output_max_length=12)
STEPS = 2


def optimiser_steps(ppo_trainer) -> set[int]:
    """The step counts Adam holds for the weights it trains (one number when all trained)."""
    return {int(state["step"]) for state in ppo_trainer.optimizer.state.values()}


def table_formula(settings) -> int:  # notebook 06's "optimiser steps per batch" for PPO
    return settings.batch_size // settings.mini_batch_size * settings.ppo_epochs


@pytest.mark.long
@pytest.mark.parametrize("shape", [dict(mini_batch_size=2, ppo_epochs=2),   # 4 a batch
                                   dict(mini_batch_size=4, ppo_epochs=1)])  # the caption's: 1
def test_ppo_takes_the_optimiser_steps_the_table_says(tmp_path, with_data, shape):
    folder = with_data(tmp_path / "artifacts")
    run = run_notebook_here("04", overrides=dict(SMALL, **shape, artifacts_dir=str(folder)),
                            max_steps=STEPS)
    per_batch = table_formula(run["settings"])
    assert per_batch == (1 if shape["ppo_epochs"] == 1 else 4)
    assert optimiser_steps(run["ppo_trainer"]) == {STEPS * per_batch}
