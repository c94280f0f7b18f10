"""TimeToAccuracy: its training clock (evaluation and validation excluded), when it evaluates, the
budget stop, resume, the DPM-features codes of a DPM in training; and the two benchmarks' bookkeeping."""

import importlib.util
import json
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import REPO, digits, make_drl, quiet_trainer, tiny_unet_config

import diffrep.callbacks.time_to_accuracy as tta_module
from diffrep.callbacks import TimeToAccuracy
from diffrep.diffusion.schedule import ScheduleConfig
from diffrep.errors import ConfigError, MissingFileError
from diffrep.evaluation.extractor import SmallClassifier, save_classifier
from diffrep.evaluation.features import encode_split
from diffrep.evaluation.probes import linear_probe
from diffrep.evaluation.semi_supervised import semi_supervised_accuracy
from diffrep.lightning_modules import DPM
from diffrep.lightning_modules.baselines import PixelBaseline

SMALL = dict(max_train=200, max_eval=100, labels_per_class=5, seeds=(0,))


class FakeTime:
    """perf_counter under the test's control: each training batch "takes" 12 s, each evaluation 60 s."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


class Tick(L.Callback):
    def __init__(self, clock: FakeTime) -> None:
        self.clock = clock

    def on_train_batch_end(self, *args) -> None:
        self.clock.now += 12.0


@pytest.fixture
def fake_time(monkeypatch):
    clock = FakeTime()
    monkeypatch.setattr(tta_module, "time", clock)
    original = TimeToAccuracy.scores

    def slow_scores(self, trainer, pl_module):
        clock.now += 60.0  # an evaluation's time must not count as training
        return original(self, trainer, pl_module)

    monkeypatch.setattr(TimeToAccuracy, "scores", slow_scores)
    return clock


def test_evaluates_when_the_training_clock_passes_each_mark_and_stops_at_the_budget(tmp_path, fake_time):
    callback = TimeToAccuracy(at_minutes=(0.5, 1.0), budget_minutes=1.5, **SMALL)
    trainer = quiet_trainer(tmp_path, max_steps=100, callbacks=[Tick(fake_time), callback])
    model, data = make_drl(code={"latent_dim": 4}), digits(subset=256, batch_size=32)
    trainer.fit(model, datamodule=data)
    # batch k ends at 0.2 k training minutes: 0.5 is passed at step 3, 1.0 at step 5, 1.5 at step 8
    assert [p["step"] for p in callback.points] == [3, 5, 8]
    assert [round(p["minutes"], 6) for p in callback.points] == [0.6, 1.0, 1.6]
    assert trainer.global_step == 8
    lines = [json.loads(x) for x in (tmp_path / "time_to_accuracy.jsonl").read_text().splitlines()]
    assert lines == callback.points
    # the last point is the probe of the model as the run left it (step 8), computed again here; 8 steps
    # teach this DRL little (34% against 33% untrained), so the number is checked, not a bound on it
    train = encode_split(model, data.evaluation_split("train"), SMALL["max_train"])
    for split in ("val", "test"):
        held_out = encode_split(model, data.evaluation_split(split), SMALL["max_eval"])
        assert lines[-1][f"{split}/linear"] == pytest.approx(linear_probe(*train, *held_out)["accuracy"], abs=1e-6)
        semi = semi_supervised_accuracy(*train, *held_out, (5,), [0], ["supervised", "label_spreading"])
        for method in ("supervised", "label_spreading"):
            assert lines[-1][f"{split}/semi_5_{method}"] == pytest.approx(semi[method][5]["mean"], abs=1e-6)


def test_a_step_clock_ignores_wall_time(tmp_path, fake_time):
    """step_minutes: the clock is steps x minutes per step, however slow the wall clock runs (each
    batch "takes" 12 s of wall time here; the step clock says 0.25 min)."""
    callback = TimeToAccuracy(at_minutes=(0.5, 1.0), budget_minutes=1.5, step_minutes=0.25,
                              reconstruction={"num_images": 8, "num_steps": 2}, **SMALL)
    trainer = quiet_trainer(tmp_path, max_steps=100, callbacks=[Tick(fake_time), callback])
    trainer.fit(make_drl(code={"latent_dim": 4}), datamodule=digits(subset=256, batch_size=32))
    assert [p["step"] for p in callback.points] == [2, 4, 6]
    assert [p["minutes"] for p in callback.points] == [0.5, 1.0, 1.5]
    # the reconstruction option on a real model: decodings from the inverted x_T, pixels in [0, 1]
    assert all(0 < p["test/recon_mse"] < 0.5 and -1 < p["test/recon_ssim"] < 1 for p in callback.points)
    assert "test/rfid" not in callback.points[-1]  # no extractor given, no rFID
    with pytest.raises(ConfigError, match="step_minutes"):
        TimeToAccuracy(step_minutes=0)


def test_a_resumed_run_continues_the_clock_and_its_points(tmp_path, fake_time):
    from lightning.pytorch.callbacks import ModelCheckpoint

    data = digits(subset=256, batch_size=32)

    def fit(max_steps: int, budget: float | None, ckpt_path=None) -> tuple[TimeToAccuracy, L.Trainer]:
        callback = TimeToAccuracy(at_minutes=(0.5, 1.0, 2.0), budget_minutes=budget, **SMALL)
        saver = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, save_top_k=0)
        trainer = quiet_trainer(tmp_path, max_steps=max_steps, enable_checkpointing=True,
                                callbacks=[Tick(fake_time), callback, saver])
        trainer.fit(make_drl(code={"latent_dim": 4}), datamodule=data, ckpt_path=ckpt_path)
        return callback, trainer

    first, _ = fit(4, None)
    assert [p["step"] for p in first.points] == [3, 4]
    assert first.clock_minutes() == pytest.approx(0.8)
    second, trainer = fit(100, 1.0, ckpt_path=tmp_path / "ckpt/last.ckpt")
    # 0.8 minutes from the checkpoint + one more batch reaches the 1.0-minute budget at step 5
    assert trainer.global_step == 5
    assert [p["step"] for p in second.points] == [3, 4, 5]
    assert second.points[-1]["minutes"] == pytest.approx(1.0)


def test_a_run_resumed_after_its_budget_stops_at_once():
    callback = TimeToAccuracy(budget_minutes=5.0)
    callback.load_state_dict({"minutes": 6.0, "points": [], "next": 3})

    class Stub:
        should_stop = False
        global_step = 40

    trainer = Stub()
    callback.on_train_start(trainer, None)
    assert trainer.should_stop


def test_reads_the_dpm_features_of_a_dpm_in_training(tmp_path):
    L.seed_everything(0)
    model = DPM(unet=tiny_unet_config(), schedule=ScheduleConfig(num_timesteps=1000), optimisation={"lr": 2e-3},
                ema={"decay": 0.9})
    callback = TimeToAccuracy(at_minutes=(1e6,), splits=("val",), dpm_features={"layer": "middle_block", "t": 20},
                              reconstruction={"num_images": 8}, **SMALL)  # a DPM in training has no code to decode
    trainer = quiet_trainer(tmp_path, max_steps=2, callbacks=[callback])
    trainer.fit(model, datamodule=digits(subset=256, batch_size=32))
    assert [p["step"] for p in callback.points] == [2]
    assert set(callback.points[0]) == {"minutes", "step", "val/linear", "val/semi_5_supervised",
                                       "val/semi_5_label_spreading"}
    codes = callback.encoder(model).encode(digits().evaluation_split("val")[0][0][None])
    assert codes.shape == (1, model.unet.config.base_channels * model.unet.config.channel_mult[-1])


def test_a_representation_that_trains_nothing_gets_one_point_at_its_offset(tmp_path):
    data = digits(subset=256)
    callback = TimeToAccuracy(offset_minutes=0.0, **SMALL)
    trainer = quiet_trainer(tmp_path, callbacks=[callback])
    data.setup()
    trainer.test(PixelBaseline(image_shape=(1, 16, 16)), datamodule=data)
    assert len(callback.points) == 1 and callback.points[0]["minutes"] == 0.0
    assert callback.points[0]["test/linear"] > 0.5


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="increasing"):
        TimeToAccuracy(at_minutes=(2, 1))
    with pytest.raises(ValueError, match="must exceed offset_minutes"):
        TimeToAccuracy(budget_minutes=5, offset_minutes=5)
    with pytest.raises(ValueError, match="layer and t"):
        TimeToAccuracy(dpm_features={"layer": "middle_block", "time": 5})
    model = DPM(unet=tiny_unet_config())
    with pytest.raises(ValueError, match="choose from"):
        TimeToAccuracy(dpm_features={"layer": "middle", "t": 5}).encoder(model)
    with pytest.raises(ValueError, match="is not a DPM"):
        TimeToAccuracy(dpm_features={"layer": "middle_block", "t": 5}).encoder(PixelBaseline(image_shape=(1, 16, 16)))


class Decoder(torch.nn.Module):
    """A stand-in model whose decoding from the inverted x_T is ``decode(x0)``."""

    def __init__(self, decode) -> None:
        super().__init__()
        self.decode, self.device, self.calls = decode, torch.device("cpu"), []

    def reconstruct(self, x0, num_steps: int = 100, inversion_steps: int | None = None):
        self.calls.append((num_steps, inversion_steps))
        return self.decode(x0)

    def model_device(self) -> torch.device:
        return self.device


def test_reconstruction_scores_are_the_errors_and_rfid_of_one_set_of_decodings(tmp_path):
    data = digits()
    extractor = tmp_path / "extractor.pt"
    torch.manual_seed(0)
    save_classifier(SmallClassifier(width=8, feature_dim=32), extractor)
    trainer = type("Trainer", (), {"datamodule": data, "is_global_zero": True})()
    settings = {"num_images": 40, "num_steps": 7, "inversion_steps": 11, "fid_weights": str(extractor)}
    perfect = Decoder(lambda x: x)
    scores = TimeToAccuracy(reconstruction=settings).reconstruction_scores(trainer, perfect)
    assert perfect.calls == [(7, 11)]
    assert scores["test/recon_mse"] == 0.0 and scores["test/recon_ssim"] == pytest.approx(1.0, abs=1e-4)
    assert abs(scores["test/rfid"]) < 1e-3
    black_decoder = Decoder(lambda x: -torch.ones_like(x))
    black = TimeToAccuracy(reconstruction=settings).reconstruction_scores(trainer, black_decoder)
    originals = torch.stack([data.evaluation_split("test")[i][0] for i in range(40)])
    assert black["test/recon_mse"] == pytest.approx(((originals + 1) / 2).pow(2).mean().item(), rel=1e-5)
    assert black["test/rfid"] > 100 * max(abs(scores["test/rfid"]), 1e-5)  # (a random extractor: small FIDs)
    val = TimeToAccuracy(reconstruction={"split": "val", "num_images": 4}).reconstruction_scores(trainer, perfect)
    assert set(val) == {"val/recon_mse", "val/recon_ssim"}


def test_bad_reconstruction_settings_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown \\['images'\\]"):
        TimeToAccuracy(reconstruction={"images": 100})
    with pytest.raises(MissingFileError, match="python -m diffrep.evaluation.extractor --out"):
        TimeToAccuracy(reconstruction={"fid_weights": str(tmp_path / "missing.pt")})


def load_benchmark(name: str):
    sys.path.insert(0, str(REPO / "benchmarks"))
    spec = importlib.util.spec_from_file_location(name, REPO / f"benchmarks/{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def point(minutes: float, step: int, accuracy: float) -> dict:
    return {"minutes": minutes, "step": step, **{f"{s}/{m}": accuracy for s in ("val", "test")
                                                  for m in ("linear", "semi_10_supervised", "semi_10_label_spreading")}}


def test_time_to_accuracy_tables_read_the_last_point_before_each_mark(tmp_path):
    bench = load_benchmark("time_to_accuracy")
    done = {"pixels": {"points": [point(0.0, 0, 0.70)]},
            "DRL": {"points": [point(1.0, 250, 0.60), point(4.01, 1000, 0.65), point(9.0, 2300, 0.80)]}}
    text = bench.write_results(tmp_path, {"minutes": 9}, done)
    assert bench.at_minutes(done["DRL"]["points"], 4)["step"] == 1000  # taken just after the 4-minute mark
    assert bench.at_minutes(done["DRL"]["points"], 3.5)["step"] == 250
    assert bench.at_minutes(done["DRL"]["points"], 0.5) is None
    assert "| DRL | 1 | 9.0 (2300) | 80.0 / 80.0 |" in text
    assert "| codes | 2 min | 4 min | 8 min |\n" in text  # marks up to the longest run (9 minutes)
    assert "| DRL | 60.0 / 60.0 / 60.0 | 65.0 / 65.0 / 65.0 | 65.0 / 65.0 / 65.0 |\n" in text
    assert "| pixels | " + " | ".join(["70.0 / 70.0 / 70.0"] * 3) + " |" in text
    done["DRL"]["points"].append(point(20.0, 5000, 0.85))
    done["AE"] = {"points": [point(1.0, 100, 0.50), point(3.0, 300, 0.55)]}
    text = bench.write_results(tmp_path, {"minutes": 20}, done)
    assert "| DRL | 60.0 / 60.0 / 60.0 | 65.0 / 65.0 / 65.0 | 65.0 / 65.0 / 65.0 | 80.0 / 80.0 / 80.0 |\n" in text
    assert "| AE | 50.0 / 50.0 / 50.0 | - | - | - |\n" in text  # nothing after its run ended
    assert (tmp_path / "time_to_accuracy.png").stat().st_size > 10000


def test_several_training_seeds_show_their_mean_and_spread(tmp_path):
    bench = load_benchmark("time_to_accuracy")
    done = {"DRL": {"points": [point(1.0, 250, 0.60), point(2.0, 500, 0.70)],
                    "seeds": {"2": {"points": [point(1.0, 250, 0.64), point(2.0, 500, 0.74)]},
                              "1": {"points": [point(1.0, 250, 0.62), point(2.0, 500, 0.72)]}}}}
    assert [points[-1]["test/linear"] for points in bench.seed_runs(done["DRL"])] == [0.70, 0.72, 0.74]
    text = bench.write_results(tmp_path, {"minutes": 2}, done)
    assert "| DRL | 3 | 2.0 (500) | 72.0 ± 2.0 / 72.0 ± 2.0 |" in text  # std over 0.70, 0.72, 0.74
    assert "| DRL | 72.0 ± 2.0 / 72.0 ± 2.0 / 72.0 ± 2.0 |" in text  # the 2-minute mark
    # seed 0 trains on to 4 minutes, seeds 1-2 stopped at 2 (a shorter --budget): each mark counts the
    # seeds that trained that long, the end-of-run row seed 0 alone
    done["DRL"]["points"].append(point(4.0, 1000, 0.80))
    text = bench.write_results(tmp_path, {"minutes": 4}, done)
    assert "| DRL | 1 | 4.0 (1000) | 80.0 / 80.0 |" in text
    assert "| DRL | 72.0 ± 2.0 / 72.0 ± 2.0 / 72.0 ± 2.0 | 80.0 / 80.0 / 80.0 |" in text  # 2 and 4 minutes


def test_each_seed_trains_in_its_own_folder_on_its_own_dpm_and_resumes(tmp_path, monkeypatch):
    import argparse

    bench = load_benchmark("time_to_accuracy")
    calls = []

    def fake_diffrep(args, cwd, log):
        calls.append(args)
        run_dir = Path(args[args.index("--trainer.default_root_dir") + 1])
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "time_to_accuracy.jsonl").write_text(json.dumps(point(3.0, 30, 0.5)) + "\n")
        return 60.0

    monkeypatch.setattr(bench, "diffrep", fake_diffrep)
    args = argparse.Namespace(minutes=6.0, dpm_minutes=10.0, precision="bf16-mixed")
    pdae = next(e for e in bench.ENTRIES if e.name == "PDAE")
    done = {"DPM features": {"points": [point(10.0, 100, 0.5)], "seeds": {"1": {"points": [point(9.5, 95, 0.5)]}}}}
    with pytest.raises(SystemExit, match="redo 'DPM features'"):  # its record is there, its checkpoint is not
        bench.run_entry(pdae, 1, args, tmp_path, done, {}, "", tmp_path / "log")
    assert not calls
    for dpm in ("runs/dpm_seed1", "runs/dpm"):
        (tmp_path / dpm / "checkpoints").mkdir(parents=True)
        (tmp_path / dpm / "checkpoints/last.ckpt").write_bytes(b"a DPM")
    run = bench.run_entry(pdae, 1, args, tmp_path, done, {}, "", tmp_path / "log")
    command = calls[-1]
    assert command[command.index("--seed_everything") + 1] == "1"
    assert command[command.index("--model.init_args.dpm_checkpoint") + 1] == "runs/dpm_seed1/checkpoints/last.ckpt"
    assert command[command.index("--trainer.default_root_dir") + 1] == str(tmp_path / "runs/pdae_seed1")
    assert "budget_minutes: 15.5, offset_minutes: 9.5" in (tmp_path / "overrides_pdae_seed1.yaml").read_text()
    assert run == {"points": [point(3.0, 30, 0.5)], "wall_s": 60, "seed": 1, "budget_minutes": 15.5,
                   "machine": load_benchmark("official_speed").machine()}  # seeds may run on two machines
    assert "--ckpt_path" not in command
    (tmp_path / "runs/pdae_seed1/checkpoints").mkdir()
    (tmp_path / "runs/pdae_seed1/checkpoints/last.ckpt").write_bytes(b"interrupted")
    bench.run_entry(pdae, 1, args, tmp_path, done, {}, "", tmp_path / "log")  # an interrupted run resumes
    assert calls[-1][calls[-1].index("--ckpt_path") + 1] == str(tmp_path / "runs/pdae_seed1/checkpoints/last.ckpt")
    with pytest.raises(SystemExit, match="seed 2"):
        bench.run_entry(pdae, 2, args, tmp_path, done, {}, "", tmp_path / "log")
    # claim 2's equal-encoder control: PDAE on Diff-AE's encoder, after the same DPM
    swapped = next(e for e in bench.ENTRIES if e.name == "PDAE, Diff-AE's half-U-Net encoder")
    bench.run_entry(swapped, 0, args, tmp_path, {"DPM features": done["DPM features"]}, {}, "", tmp_path / "log")
    command = calls[-1]
    assert command[command.index("--model.init_args.encoder") + 1].startswith("{kind: halfunet, ")
    assert command[command.index("--config") + 1].endswith("configs/pdae.yaml")


def test_the_step_clock_recipe_trains_the_recipes_model_and_counts_its_steps():
    """Claim 4's seeds compare E(x0, t) with the recipe's static DRL on one step clock: that entry must train
    what the recipe trains (model, clipping, precision), at the recipe's pace per step."""
    import yaml

    bench = load_benchmark("time_to_accuracy")
    entry = next(e for e in bench.ENTRIES if e.name == "DRL (recipe), step clock")
    recipe = yaml.safe_load((REPO / "configs/recipes/best_cpu_hour.yaml").read_text())
    ours = yaml.safe_load((REPO / entry.config).read_text())
    assert ours["model"] == recipe["model"]
    for key in ("precision", "gradient_clip_val"):
        assert ours["trainer"][key] == recipe["trainer"][key]
    assert entry.step_minutes == bench.RECIPE_STEP_MINUTES == 60.0 / 12188 and entry.as_long_as_the_recipe
    wrn = next(e for e in bench.ENTRIES if e.name == "DRL, time-dependent WRN")
    assert wrn.config == entry.config and wrn.step_minutes == entry.step_minutes
    assert entry.name in bench.OPT_IN  # `make time-to-accuracy` runs the recipe itself, not this twin


def test_precision_verdict_compares_the_bf16_gap_with_the_seed_gap():
    bench = load_benchmark("precision")

    def run(loss, linear, semi):
        return {"final_loss": loss, "linear": linear, "semi_10": semi}

    close = {"fp32": run(0.100, 0.80, 0.60), "fp32 seed 1": run(0.104, 0.79, 0.62), "bf16": run(0.103, 0.795, 0.61)}
    assert bench.verdict(close) == "agrees"
    worse = dict(close, bf16=run(0.100, 0.74, 0.61))  # 6 points of probe accuracy lost
    assert bench.verdict(worse) == "bf16 worse"
    assert bench.verdict(dict(close, bf16=run(0.100, 0.86, 0.61))) == "bf16 better"
    # seeds that happen to agree closely: the evaluation set's standard error (0.9 points on 2000) is the floor
    lucky = {"fp32": run(0.100, 0.78, 0.636), "fp32 seed 1": run(0.100, 0.78, 0.635), "bf16": run(0.100, 0.78, 0.647)}
    assert bench.verdict(lucky) == "agrees"
    assert bench.verdict(lucky, eval_images=100000) == "bf16 better"
    assert bench.verdict(dict(close, bf16=run(0.110, 0.80, 0.60))) == "bf16 worse"  # 10% higher loss


def test_entry_budgets_read_name_equals_minutes_and_refuse_unknown_names():
    import argparse

    bench = load_benchmark("time_to_accuracy")
    parser = argparse.ArgumentParser()
    assert bench.entry_budgets(["Diff-AE=30", "DRL, NCSN++ score net=7.5"], parser) == {
        "Diff-AE": 30.0, "DRL, NCSN++ score net": 7.5}
    for bad in (["Diff-AE=soon"], ["Diffae=30"], ["PDAE=0"]):
        with pytest.raises(SystemExit) as stop:
            bench.entry_budgets(bad, parser)
        assert stop.value.code == 2


def test_table_only_with_other_settings_than_the_run_names_the_run_settings(tmp_path, monkeypatch, capsys):
    bench = load_benchmark("time_to_accuracy")
    settings = {"minutes": 60.0, "dpm_minutes": 10.0, "precision": "bf16-mixed"}
    (tmp_path / "results.json").write_text(json.dumps({"settings": settings, "entries": {
        "DRL": {"points": [point(1.0, 250, 0.6)]}}}))
    monkeypatch.setattr(bench, "REPO", tmp_path)  # its kept copy of the points goes here, not into the repo
    (tmp_path / "benchmarks/results").mkdir(parents=True)
    monkeypatch.setattr(sys, "argv", ["time_to_accuracy.py", "--out", str(tmp_path), "--table-only"])
    with pytest.raises(SystemExit) as stop:
        bench.main()
    assert stop.value.code == 2
    message = capsys.readouterr().err
    assert "holds no results for the settings" in message and "run used: {'minutes': 60.0" in message
    monkeypatch.setattr(sys, "argv", ["time_to_accuracy.py", "--out", str(tmp_path), "--table-only", "--minutes", "60"])
    bench.main()  # the run's own settings: the table
    assert "| DRL | 1 | 1.0 (250) |" in capsys.readouterr().out
