"""The demo-budget selection's rules (the fits and probes it runs are the CLI and probes tested elsewhere)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from demo_selection import _common_step, choose_pdae  # noqa: E402


def test_the_fewest_steps_within_the_tie_of_the_best_validation_probe_win():
    scores = {"0.0003": {"600": 0.780, "800": 0.7905, "1000": 0.792}, "0.0006": {"600": 0.770, "800": 0.7930}}
    chosen = choose_pdae(scores)
    assert (chosen["lr"], chosen["steps"]) == (3e-4, 800)  # 0.7905 is within 0.003 of the best 0.7930
    assert chosen["best_val_linear_accuracy"] == 0.7930
    scores["0.0003"]["800"] = 0.789  # now outside the tie: the best itself
    assert (choose_pdae(scores)["lr"], choose_pdae(scores)["steps"]) == (6e-4, 800)


def test_checkpoints_land_on_every_step_asked_for():
    assert _common_step([1000, 1500]) == 500
    assert _common_step([600, 800, 1000]) == 200
