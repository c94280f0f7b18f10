"""Weights that arrive from outside a diffrep fit: the EMA follows weights loaded by hand, and the
papers' released checkpoints (score_sde's for DRL/VDRL, phizaz/diffae's Lightning files for Diff-AE)
load into their methods through ``official_checkpoint``. The checkpoints here are synthetic: written
by the test in each official layout from the official key names, at tiny widths."""

from __future__ import annotations

import torch
import yaml
from conftest import make_drl, with_defaults


def test_encode_after_loading_an_encoder_by_hand_uses_the_loaded_weights():
    """The trap of issue 42: loading into .encoder left encode() on the EMA copy made at construction."""
    model, donor = make_drl(ema={"decay": 0.9}), make_drl(ema={"decay": 0.9})
    with torch.no_grad():
        for p in donor.encoder.parameters():
            p.add_(torch.randn_like(p))
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    model.encoder.load_state_dict(donor.encoder.state_dict())
    donor.eval()
    with torch.no_grad():
        expected = donor.code_params(x)[0]
    torch.testing.assert_close(model.encode(x), expected)
    # a deeper, partial load: only the first layer's weights follow; the rest stay as they were
    first = next(n for n, m in model.encoder.named_children())
    before = {n: model.ema.shadow(n).clone() for n in model.ema.names}
    getattr(model.encoder, first).load_state_dict(getattr(make_drl(ema={"decay": 0.9}).encoder, first).state_dict())
    changed = {n for n in model.ema.names if not torch.equal(before[n], model.ema.shadow(n))}
    assert changed and all(n.startswith(f"encoder.{first}.") for n in changed)


def test_a_whole_state_dict_keeps_its_own_shadows_and_one_without_them_syncs():
    model = make_drl(ema={"decay": 0.9})
    state = {k: v.clone() for k, v in model.state_dict().items()}
    shadow_key = next(k for k in state if k.startswith("ema.") and "encoder" in k)
    state[shadow_key] += 1.0  # a checkpoint whose EMA differs from its raw weights
    model.load_state_dict(state)
    torch.testing.assert_close(model.state_dict()[shadow_key], state[shadow_key])
    raw_only = {k: v + 0.5 for k, v in state.items() if not k.startswith("ema.") and v.is_floating_point()}
    model.load_state_dict(raw_only, strict=False)
    name = next(n for n in model.ema.names if n.startswith("encoder."))
    torch.testing.assert_close(model.ema.shadow(name), dict(model.named_parameters())[name].detach())


# ----------------------------------------------------------------- score_sde (DRL / VDRL)
import json  # noqa: E402
import sys  # noqa: E402
import types  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from conftest import REPO, run_cli  # noqa: E402

from diffrep.checkpoints import CheckpointError  # noqa: E402
from diffrep.lightning_modules import DRL, DiffAE  # noqa: E402
from diffrep.nets.ncsnpp_official import official_wrn_names, split_official_state_dict  # noqa: E402
from diffrep.official_checkpoints import read_foreign, read_official  # noqa: E402

NCSNPP = dict(in_channels=1, image_size=16, base_channels=8, channel_mult=[1, 2, 2], num_res_blocks=1,
              attention_resolutions=[8], dropout=0.0)


def paper_drl(**kwargs) -> DRL:
    torch.manual_seed(0)
    defaults = dict(network=dict(NCSNPP, kind="ncsnpp"), encoder={"kind": "wrn", "depth": 10, "widen_factor": 1},
                    code={"latent_dim": 16, "time_dependent": True}, ema={"decay": 0.9})
    return DRL(**with_defaults(defaults, kwargs))


def score_sde_file(path: Path, source: DRL, ema_shift: float = 0.25, drop_shadows: int = 0) -> Path:
    """``source``'s weights written as score_sde's save_checkpoint does, from the official names: the
    DataParallel ``module.`` prefix, the WRN's classifier head and the reconstruction decoder the
    official model carries, ``sigmas``, and the EMA as an unnamed list of the trainable parameters
    (which ones: the source's own ``requires_grad``) shifted by ``ema_shift``."""
    trainable = {n for n, p in source.named_parameters() if p.requires_grad}
    entries = [(f"encoder.{k}", v, f"encoder.{k0}" in trainable)
               for (k, v), k0 in zip(official_wrn_names(source.encoder.state_dict()).items(),
                                     source.encoder.state_dict(), strict=True)]
    entries += [("encoder.linear.weight", torch.randn(10, 64), True), ("encoder.linear.bias", torch.zeros(10), True)]
    entries += [(k, v, f"unet.{k}" in trainable) for k, v in source.unet.state_dict().items()]
    entries += [("decoder.conv.weight", torch.randn(4, 4, 3, 3), True), ("sigmas", torch.ones(1000), False)]
    model = {f"module.{k}": v.clone() for k, v, _ in entries}
    shadows = [v + ema_shift for _, v, grad in entries if grad][: len([1 for e in entries if e[2]]) - drop_shadows]
    torch.save({"optimizer": {"state": {}}, "model": model, "step": 1234,
                "ema": {"decay": 0.999, "num_updates": 1234, "shadow_params": shadows}}, path)
    return path


@pytest.fixture(scope="module")
def drl_source() -> DRL:
    model = paper_drl()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def test_a_score_sde_checkpoint_loads_raw_weights_into_the_network_and_the_ema_list_into_the_ema(tmp_path,
                                                                                                    drl_source):
    path = score_sde_file(tmp_path / "checkpoint_26.pth", drl_source)
    weights = read_official(path, "score_sde")
    assert weights.step == 1234 and not any(k.startswith("module.") for k in weights.raw)
    model = paper_drl(official_checkpoint=str(path))
    for name, p in model.named_parameters():
        source = dict(drl_source.named_parameters())[name]
        torch.testing.assert_close(p, source, rtol=0, atol=0)
        if p.requires_grad:
            torch.testing.assert_close(model.ema.shadow(name), source + 0.25, rtol=0, atol=0)
    # encode() right after loading uses the EMA weights, as the official evaluation does
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    ema_as_weights = paper_drl(official_checkpoint=str(path), ema={"decay": None})
    torch.testing.assert_close(model.encode(x), ema_as_weights.encode(x))
    enc = dict(ema_as_weights.encoder.named_parameters())
    torch.testing.assert_close(enc["head.weight"], drl_source.encoder.head.weight + 0.25, rtol=0, atol=0)
    assert not torch.allclose(model.encode(x), drl_source.encode(x))


def test_split_official_state_dict_takes_the_data_parallel_prefix_off(drl_source):
    official = {f"module.encoder.{k}": v for k, v in official_wrn_names(drl_source.encoder.state_dict()).items()}
    encoder, _ = split_official_state_dict(official)
    assert encoder.keys() == drl_source.encoder.state_dict().keys()
    with pytest.raises(Exception, match="trained without an encoder"):
        split_official_state_dict({"module.all_modules.0.W": torch.ones(4)})


def test_bad_official_checkpoints_each_end_in_one_line_and_load_nothing(tmp_path, drl_source):
    good = score_sde_file(tmp_path / "good.pth", drl_source)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cases = {
        truncated: "corrupt or truncated",
        score_sde_file(tmp_path / "short_ema.pth", drl_source, drop_shadows=1): "the EMA holds .* trainable",
        tmp_path / "missing.pth": "does not exist",
    }
    for path, message in cases.items():
        with pytest.raises(CheckpointError, match=message):
            paper_drl(official_checkpoint=str(path))
    with pytest.raises(CheckpointError, match="set the config's widths"):  # a wider latent than the file's
        paper_drl(official_checkpoint=str(good), code={"latent_dim": 32})
    with pytest.raises(CheckpointError, match="Diff-AE Lightning checkpoint"):  # another method's layout
        tiny_diffae(official_checkpoint=str(good))
    torch.save({"diffrep": {"method": "DRL"}, "state_dict": {}}, tmp_path / "ours.ckpt")
    with pytest.raises(CheckpointError, match="a diffrep checkpoint of DRL .*--ckpt_path"):
        paper_drl(official_checkpoint=str(tmp_path / "ours.ckpt"))


def test_a_bad_official_checkpoint_on_the_command_line_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    (tmp_path / "broken.pth").write_bytes(b"not a checkpoint")
    code, _, err = run_cli("fit", "--config", REPO / "configs/drl.yaml", "--model.init_args.official_checkpoint",
                           tmp_path / "broken.pth", "--trainer.max_steps", "1", cwd=tmp_path, capsys=capsys,
                           monkeypatch=monkeypatch)
    assert code == 2 and "broken.pth" in err and "Traceback" not in err


# ----------------------------------------------------------------- phizaz/diffae's Lightning files
def tiny_diffae(**kwargs) -> DiffAE:
    torch.manual_seed(0)
    defaults = dict(network=dict(kind="beatgans", in_channels=1, image_size=16, base_channels=16, channel_mult=[1, 2],
                                 num_res_blocks=1, attention_resolutions=[8], num_groups=8, embed_channels=32,
                                 dropout=0.0),
                    code={"latent_dim": 32}, ema={"decay": 0.9},
                    encoder=dict(kind="halfunet", base_channels=16, channel_mult=[1, 2], num_res_blocks=1, num_groups=8,
                                 attention_resolutions=[8]))
    return DiffAE(**with_defaults(defaults, kwargs))


def diffae_lightning_file(path: Path, source: DiffAE, latent_net: torch.nn.Module | None = None) -> Path:
    """A Lightning-1.4-style last.ckpt: state_dict with x_T, model.* and ema_model.* (the semantic
    encoder under other names, in its order) and callbacks keyed by a class of a module the loader
    does not have; hyper_parameters as the official TrainConfig's."""
    fake = types.ModuleType("pytorch_lightning.callbacks.model_checkpoint")

    class ModelCheckpoint:
        def __reduce__(self):  # would run on a full unpickle
            return (print, ("foreign code ran",))

    ModelCheckpoint.__module__, ModelCheckpoint.__qualname__ = fake.__name__, "ModelCheckpoint"
    fake.ModelCheckpoint = ModelCheckpoint
    sys.modules[fake.__name__] = fake
    try:
        network = {f"encoder.official_{i}": v for i, v in enumerate(source.encoder.state_dict().values())}
        network.update(source.unet.state_dict())
        if latent_net is not None:  # a *_latent file: its latent DPM and code statistics
            network.update({f"latent_net.{k}": v for k, v in latent_net.state_dict().items()})
        state = {"x_T": torch.randn(2, 1, 16, 16), **{f"model.{k}": v.clone() for k, v in network.items()},
                 **{f"ema_model.{k}": v + 0.5 for k, v in network.items()}}
        if latent_net is not None:
            state.update(conds_mean=torch.arange(32.0)[None], conds_std=torch.full((1, 32), 2.0))
        torch.save({"state_dict": state, "global_step": 77, "callbacks": {ModelCheckpoint: ModelCheckpoint()},
                    "hyper_parameters": {"net_ch": 16, "img_size": 16}}, path)
    finally:
        del sys.modules[fake.__name__]
    return path


def test_a_diffae_lightning_file_loads_without_its_pickled_classes_and_runs_none_of_them(tmp_path, capsys):
    source = tiny_diffae()
    with torch.no_grad():
        for p in source.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    path = diffae_lightning_file(tmp_path / "last.ckpt", source)
    raw = read_foreign(path)
    assert raw["hyper_parameters"]["net_ch"] == 16 and "foreign code ran" not in capsys.readouterr().out
    model = tiny_diffae(official_checkpoint=str(path))
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    for name, p in model.named_parameters():
        torch.testing.assert_close(p, dict(source.named_parameters())[name], rtol=0, atol=0)
        torch.testing.assert_close(model.ema.shadow(name), dict(source.named_parameters())[name] + 0.5)
    shifted = tiny_diffae(ema={"decay": None})
    with torch.no_grad():
        for p_shift, p in zip(shifted.parameters(), source.parameters(), strict=True):
            p_shift.copy_(p + 0.5)
    torch.testing.assert_close(model.encode(x), shifted.encode(x))
    with pytest.raises(CheckpointError, match=r"semantic encoder has .* tensors.*own config: img_size=16 "
                                              r"\(network.image_size\), net_ch=16 \(network.base_channels\)"):
        tiny_diffae(
            official_checkpoint=str(path),
            encoder=dict(kind="halfunet", base_channels=16, channel_mult=[1, 2, 2], num_res_blocks=1, num_groups=8),
        )


def test_a_diffae_latent_file_gives_the_latent_dpm_its_base_its_mlp_and_its_code_statistics(tmp_path):
    from diffrep.lightning_modules import LatentDPM
    from diffrep.nets.latent_mlp import LatentMLP

    source, mlp = tiny_diffae(), LatentMLP(32, 16, 3, 64)
    path = diffae_lightning_file(tmp_path / "last.ckpt", source, latent_net=mlp)
    config = tmp_path / "diffae_tiny.yaml"
    args = {k: v for k, v in tiny_diffae().hparams.items() if not k.startswith("_")}
    config.write_text(yaml.safe_dump({"model": {"class_path": "diffrep.lightning_modules.DiffAE", "init_args": args}}))
    model = LatentDPM(official_checkpoint=str(path), base_config=str(config), network={"hidden": 16, "num_layers": 3},
                      ema={"decay": 0.9})
    for name, p in model.net.named_parameters():
        torch.testing.assert_close(p, dict(mlp.named_parameters())[name], rtol=0, atol=0)
        torch.testing.assert_close(model.ema.shadow(f"net.{name}"), dict(mlp.named_parameters())[name] + 0.5)
    torch.testing.assert_close(model.z_mean, torch.arange(32.0))
    torch.testing.assert_close(model.z_std, torch.full((32,), 2.0))
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    evaluated = tiny_diffae(official_checkpoint=str(path))  # the base is the autoencoder's EMA weights
    torch.testing.assert_close(model.encode(x), evaluated.encode(x))
    assert not any(p.requires_grad for p in model.base.parameters())
    with pytest.raises(CheckpointError, match="has no latent DPM"):
        LatentDPM(
            official_checkpoint=str(diffae_lightning_file(tmp_path / "autoenc.ckpt", source)),
            base_config=str(config),
            network={"hidden": 16, "num_layers": 3},
        )
    with pytest.raises(Exception, match="needs base_config"):
        LatentDPM(official_checkpoint=str(path), network={"hidden": 16, "num_layers": 3})


def test_diffrep_test_evaluates_a_released_drl_checkpoint_with_one_flag(tmp_path, capsys, monkeypatch, drl_source):
    """`diffrep test --config <the architecture> --model.init_args.official_checkpoint FILE`: the
    evaluation suite on the released weights (the EMA ones, as the official evaluation), its report
    naming the file."""
    path = score_sde_file(tmp_path / "checkpoint_26.pth", drl_source)
    args = {k: v for k, v in paper_drl().hparams.items() if not k.startswith("_")}
    config = {
        "model": {"class_path": "diffrep.lightning_modules.DRL", "init_args": args},
        "data": str(REPO / "configs/data/digits.yaml"),
        "trainer": {
            "default_root_dir": str(tmp_path / "run"),
            "logger": False,
            "enable_progress_bar": False,
            "precision": "32-true",
            "limit_test_batches": 1,
            "callbacks": [
                {"class_path": "diffrep.callbacks.LinearProbe", "init_args": {"max_train": 200, "max_test": 60}}
            ],
        },
    }
    (tmp_path / "drl_tiny.yaml").write_text(yaml.safe_dump(config))
    code, out, err = run_cli(
        "test",
        "--config",
        tmp_path / "drl_tiny.yaml",
        "--model.init_args.official_checkpoint",
        path,
        cwd=tmp_path,
        capsys=capsys,
        monkeypatch=monkeypatch,
    )
    assert code == 0, err[-2000:]
    report = json.loads((tmp_path / "run/test_report.json").read_text())
    assert report["checkpoint"] == str(path) and 0.1 < report["metrics"]["probe/linear_accuracy"] <= 1.0
