"""The training step reads nothing back to the host on its loss and gradient path: the finite
checks stay on the device (a GPU's queue never stalls, CUDA graphs stay capturable), and a
non-finite step is still skipped or stopped, by the step number, at the guard's next read."""

from __future__ import annotations

import pytest
import torch
from conftest import digits, quiet_trainer, tiny_unet_config

from diffrep.diffusion.schedule import ScheduleConfig
from diffrep.lightning_modules import DPM
from diffrep.lightning_modules.api import NonFiniteLossError
from diffrep.reliability import NonFiniteGuard

READS = ("item", "__bool__", "cpu", "tolist", "numpy", "__int__", "__float__", "__index__")


class HostReads:
    """Counts Python-level reads of a tensor's value (``.item()``, ``bool(t)``, ``.cpu()``, ...)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        for name in READS:
            original = getattr(torch.Tensor, name)

            def counted(tensor, *args, _name=name, _original=original, **kwargs):
                self.calls.append(_name)
                return _original(tensor, *args, **kwargs)

            monkeypatch.setattr(torch.Tensor, name, counted)


class StepTrainer:
    """What the guard reads of a trainer inside a step."""

    precision = "32-true"
    global_step = 7


def dpm() -> DPM:
    torch.manual_seed(0)
    return DPM(
        unet=tiny_unet_config(),
        schedule=ScheduleConfig(num_timesteps=1000),
        optimisation={"lr": 2e-3},
        ema={"decay": 0.9},
    )


def one_step(model, optimizer, guard, x0) -> None:
    """The training step as Lightning runs it: loss, the module's check, backward, the guard, Adam, EMA."""
    loss = model.loss(x0)
    model.check_finite(loss)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    guard.on_before_optimizer_step(StepTrainer(), model, optimizer)
    optimizer.step()
    model.ema.update()


def test_a_guarded_training_step_reads_nothing_back_to_the_host(monkeypatch):
    model, guard = dpm(), NonFiniteGuard()
    guard.setup(None, model, "fit")
    optimizer = model.configure_optimizers()
    assert getattr(optimizer, "_step_supports_amp_scaling", False)  # fused Adam: it takes found_inf
    x0 = torch.rand(8, 1, 16, 16) * 2 - 1
    one_step(model, optimizer, guard, x0)  # warm-up: optimizer state, the guard's device counters
    reads = HostReads(monkeypatch)
    one_step(model, optimizer, guard, x0)
    assert reads.calls == []
    model._nonfinite_guard = None  # without a guard the module's own check reads the loss: counted
    model.check_finite(model.loss(x0))
    assert reads.calls


def test_a_non_finite_step_changes_no_weight_and_no_adam_state_without_a_read(monkeypatch):
    model, guard = dpm(), NonFiniteGuard(max_skips=1)
    guard.setup(None, model, "fit")
    optimizer = model.configure_optimizers()
    x0 = torch.rand(8, 1, 16, 16) * 2 - 1
    one_step(model, optimizer, guard, x0)
    before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("ema.")}
    adam_steps = [s["step"].clone() for s in optimizer.state.values()]
    reads = HostReads(monkeypatch)
    one_step(model, optimizer, guard, x0.clone().fill_(float("nan")))
    assert reads.calls == []
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert [s["step"] for s in optimizer.state.values()] == adam_steps
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="non-finite gradient at step 7: step skipped \\(1/1\\)"):
        guard.check(StepTrainer(), model)  # the read, every check_every steps and before a checkpoint
    assert guard.skipped == 1


def test_the_guard_stops_at_its_next_read_naming_the_first_step_past_the_limit(tmp_path):
    """Through Lightning: NaN batches at steps 2, 4 and 5 with max_skips 1 and a read every 3 steps:
    the read at step 6 stops the run naming step 4, the first past the limit; no weight ever became
    non-finite."""
    import lightning as L

    class PoisonAt(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.global_step in (2, 4, 5):
                batch[0][0] = float("nan")

    model = dpm()
    trainer = quiet_trainer(tmp_path, max_steps=20, callbacks=[PoisonAt(), NonFiniteGuard(max_skips=1, check_every=3)])
    with pytest.raises(NonFiniteLossError, match="at step 4 after skipping 1 steps"), pytest.warns(UserWarning):
        trainer.fit(model, datamodule=digits(batch_size=32))
    assert trainer.global_step == 6 and all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize("algorithm,limit", [("norm", 1e-3), ("value", 1e-5)])
def test_gradient_clipping_works_with_the_fused_optimizer(algorithm, limit):
    """Lightning refuses to clip for a fused optimizer under mixed precision; the methods clip with
    torch themselves (bf16 and fp32 have no gradient scaler), as Lightning's fp32 path would."""
    model = dpm()
    optimizer = model.configure_optimizers()
    model.loss(torch.rand(8, 1, 16, 16) * 2 - 1).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert torch.stack([g.norm() for g in grads]).norm() > 100 * limit
    model.configure_gradient_clipping(optimizer, limit, algorithm)
    if algorithm == "norm":
        assert torch.stack([g.norm() for g in grads]).norm() <= limit * 1.001
    else:
        assert max(g.abs().max() for g in grads) <= limit
