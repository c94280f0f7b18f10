"""benchmarks/step_time.py's --against pieces that need no second checkout: a tree's config read as that
tree defines it, and the per-step clock of a plain fit."""

import importlib.util

from conftest import REPO, tiny_unet_config

from diffrep.diffusion.schedule import ScheduleConfig
from diffrep.lightning_modules import DPM, DRL

spec = importlib.util.spec_from_file_location("step_time", REPO / "benchmarks/step_time.py")
step_time = importlib.util.module_from_spec(spec)
spec.loader.exec_module(step_time)


def test_a_tree_s_config_gives_its_class_init_args_and_trainer():
    cls, init_args, trainer = step_time.config_model(REPO, "drl")
    assert cls is DRL and init_args["code"]["latent_dim"] > 0 and trainer["precision"] == "bf16-mixed"


def test_the_step_clock_times_each_step_after_the_warmup():
    model = DPM(unet=tiny_unet_config(), schedule=ScheduleConfig(num_timesteps=100), optimisation={"lr": 1e-3})
    seconds = step_time.fit_steps(model, {}, steps=3, warmup=2)
    assert len(seconds) == 3 and all(0 < s < 10 for s in seconds)
    assert model.global_step == 3 + 2 + 1  # the last step is run so the third one can be timed
