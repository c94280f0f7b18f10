"""A user's own encoder and optimiser by class_path, with no diffrep code changed: they train through
`diffrep fit`, land in the checkpoint as plain settings and rebuild from it; bad paths are one line."""

import functools

import pytest
import torch
from conftest import make_drl, run_cli
from user_plugins import TinyEncoder

from diffrep.errors import ConfigError
from diffrep.lightning_modules.loading import load_trained

CONFIG = """
seed_everything: 0
model:
  class_path: diffrep.lightning_modules.DRL
  init_args:
    network: {in_channels: 1, image_size: 16, base_channels: 16, channel_mult: [1, 2], num_res_blocks: 1,
           attention_resolutions: [], num_groups: 8}
    encoder: {class_path: user_plugins.TinyEncoder, init_args: {width: 8}}
    code: {latent_dim: 4}
    optimisation: {lr: 0.01, optimizer: {class_path: torch.optim.SGD, init_args: {momentum: 0.9}}}
    ema: {decay: null}
data:
  class_path: diffrep.datamodules.DigitsDataModule
  init_args: {image_size: 16, batch_size: 16, val_size: 100, subset: 64}
trainer:
  default_root_dir: {root}
  max_steps: 2
  logger: false
  enable_progress_bar: false
  limit_val_batches: 0
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {save_last: true}
"""


def test_a_users_encoder_and_optimiser_train_through_the_cli_and_rebuild_from_the_checkpoint(
        tmp_path, capsys, monkeypatch):
    config = tmp_path / "mine.yaml"
    config.write_text(CONFIG.replace("{root}", str(tmp_path / "run")))
    seen = {}
    original = torch.optim.SGD.__init__

    @functools.wraps(original)  # the signature diffrep reads stays SGD's
    def spy(self, params, **kwargs):
        seen.update(kwargs)
        original(self, params, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "__init__", spy)
    code, _, err = run_cli("fit", "--config", config, cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err[-2000:]
    assert seen == {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.0}  # offered lr and weight decay; SGD has no betas
    last = tmp_path / "run/checkpoints/last.ckpt"
    model = load_trained(last)
    assert isinstance(model.encoder, TinyEncoder) and model.encoder.net[0].out_channels == 8
    saved = torch.load(last, map_location="cpu", weights_only=True)  # plain settings: no pickled classes
    assert saved["hyper_parameters"]["encoder"] == {"class_path": "user_plugins.TinyEncoder", "init_args": {"width": 8}}
    trained = saved["state_dict"]["encoder.net.0.weight"]
    torch.testing.assert_close(model.encoder.net[0].weight, trained)
    assert model.encode(torch.zeros(2, 1, 16, 16)).shape == (2, 4)


def test_a_class_path_alone_takes_encoder_kwargs_as_its_arguments():
    model = make_drl(code={"latent_dim": 4}, encoder={"kind": "user_plugins.TinyEncoder", **{"width": 12}})
    assert isinstance(model.encoder, TinyEncoder) and model.encoder.net[0].out_channels == 12


@pytest.mark.parametrize("encoder, message", [
    ({"class_path": "user_plugins.Missing"}, "cannot be imported"),
    ({"class_path": "nowhere_module.Encoder"}, "cannot be imported"),
    ({"class_path": "user_plugins.NotAModule"}, "not a subclass of torch.nn.modules.module.Module"),
    ({"class_path": "user_plugins.TinyEncoder", "init_args": {"depth": 3}}, "could not be built"),
    ({"clas_path": "user_plugins.TinyEncoder"}, "takes {class_path"),
])
def test_a_bad_plugin_is_one_line_naming_what_to_fix(encoder, message):
    with pytest.raises(ConfigError, match=message.replace("{", r"\{")):
        make_drl(encoder=encoder, code={"latent_dim": 4})


def test_an_optimiser_that_is_not_one_is_refused_before_training():
    with pytest.raises(ConfigError, match="not a subclass of torch.optim"):
        make_drl(optimisation={"optimizer": {"class_path": "torch.nn.Linear"}})
    with pytest.raises(ConfigError, match="'adam', 'adamw' or your own"):
        make_drl(optimisation={"optimizer": "lamb"})


def test_the_readme_shows_the_plugin_it_tests():
    from conftest import REPO

    readme = (REPO / "README.md").read_text()
    assert "class TinyEncoder(nn.Module):" in readme and "class_path: my_encoders.TinyEncoder" in readme
