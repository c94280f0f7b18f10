"""DPMFeatures: a trained DPM's pooled activations as the code, and the layer x t sweep on validation data."""

import json

import pytest
import torch
from conftest import digits, quiet_trainer, tiny_unet_config

from diffrep.diffusion.schedule import ScheduleConfig
from diffrep.evaluation.dpm_features import default_layers
from diffrep.lightning_modules import DPM, DPMFeatures


def test_the_code_is_the_pooled_activation_of_the_named_layer(tiny_dpm_checkpoint):
    model = DPMFeatures(str(tiny_dpm_checkpoint), layer="output_blocks.1", t=50, noise_seed=3)
    data = digits(subset=64)
    data.setup()
    x0 = torch.stack([data.splits["test"][i][0] for i in range(6)])
    captured = {}
    handle = model.unet.output_blocks[1].register_forward_hook(lambda m, i, o: captured.update(out=o))
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(3))
    t = torch.full((6,), 50)
    abar = model.schedule.alpha(t)[:, None, None, None]  # alpha(t) = sqrt(abar_t)
    x_t = abar * x0 + model.schedule.sigma(t)[:, None, None, None] * eps
    with torch.no_grad():
        model.unet(x_t, model.schedule.model_time(t))
    handle.remove()
    code = model.encode(x0)
    assert code.shape == (6, captured["out"].shape[1])
    torch.testing.assert_close(code, captured["out"].mean(dim=(2, 3)))
    assert torch.equal(code, model.encode(x0))  # the same noise every call: the same code


def test_unknown_layers_and_a_missing_choice_are_refused(tiny_dpm_checkpoint):
    with pytest.raises(ValueError, match="unknown U-Net layers.*middle_block"):
        DPMFeatures(str(tiny_dpm_checkpoint), layer="decoder.9")
    model = DPMFeatures(str(tiny_dpm_checkpoint))
    with pytest.raises(RuntimeError, match="no layer/t yet"):
        model.encode(torch.zeros(1, 1, 16, 16))


def test_the_sweep_chooses_the_best_validation_pair_and_writes_its_heat_map(tiny_dpm_checkpoint, tmp_path):
    layers = ["input_blocks.1", "middle_block", "output_blocks.2"]

    def sweep(checkpoint, out):
        model = DPMFeatures(str(checkpoint), sweep_layers=layers, sweep_times=(10, 300), sweep_train=300,
                            sweep_val=100)
        trainer = quiet_trainer(out, limit_test_batches=1)
        trainer.test(model, datamodule=digits(subset=400))
        return model, trainer, json.loads((out / "dpm_feature_sweep.json").read_text())

    model, trainer, saved = sweep(tiny_dpm_checkpoint, tmp_path)
    assert default_layers(model.unet)[-1] == f"output_blocks.{len(model.unet.output_blocks) - 1}"
    grid = torch.tensor(saved["val_accuracy"])
    # the random-feature control: the same DPM untrained (its initial weights; measured 0.46-0.51 at t = 10
    # against 0.76-0.90 trained), so the sweep must see what training put in the features
    torch.manual_seed(0)
    untrained = DPM(unet=tiny_unet_config(), schedule=ScheduleConfig(num_timesteps=1000))  # the fixture's DPM
    control_trainer = quiet_trainer(tmp_path / "untrained", max_steps=0, limit_train_batches=0)
    control_trainer.fit(untrained, datamodule=digits(batch_size=32))
    control_trainer.save_checkpoint(tmp_path / "untrained.ckpt")
    control = torch.tensor(sweep(tmp_path / "untrained.ckpt", tmp_path / "untrained_sweep")[2]["val_accuracy"])
    assert grid.shape == control.shape == (3, 2)
    assert grid.max() > control.max() + 0.2 and (grid[:, 0] > control[:, 0] + 0.1).all(), (grid, control)
    i, j = divmod(int(grid.argmax()), 2)
    assert (model.layer, model.t) == (layers[i], (10, 300)[j]) == tuple(saved["best"])
    assert (tmp_path / "images/dpm_feature_sweep.png").is_file()
    assert trainer.callback_metrics["test/feature_t"] == model.t
