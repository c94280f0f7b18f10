"""Every private Lightning/torch name diffrep reads still exists: an upgrade that renames one fails here, by name."""

import importlib

import lightning as L
import torch
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import WandbLogger

from diffrep import internals


def test_every_private_name_diffrep_uses_is_where_it_reads_it(tmp_path):
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, default_root_dir=str(tmp_path))
    fused = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))], fused=True)
    holders = {
        "_is_mkldnn_bf16_supported": torch.ops.mkldnn,
        "_warn_if_modules_in_eval_mode": trainer.fit_loop,
        "_hpc_resume_path": trainer._checkpoint_connector,
        "_step_supports_amp_scaling": fused,
        "_wandb_init": WandbLogger(save_dir=str(tmp_path), offline=True, project="t"),
        "_parse_ckpt_path": LightningCLI,
        "_run_subcommand": LightningCLI,
    }
    assert set(holders) == {name for _, _, name, _ in internals.PRIVATE_NAMES}  # every listed name is checked
    for module, owner, name, why in internals.PRIVATE_NAMES:
        importlib.import_module(module)
        assert hasattr(holders[name], name), f"{module}.{owner}.{name} is gone ({why}); see diffrep/internals.py"
        assert why


def test_the_accessors_read_what_they_name(tmp_path):
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, default_root_dir=str(tmp_path))
    assert internals.hpc_resume_path(trainer) is None
    params = [torch.nn.Parameter(torch.zeros(2))]
    assert internals.skips_on_found_inf(torch.optim.Adam(params, fused=True))
    assert not internals.skips_on_found_inf(torch.optim.SGD(params, lr=0.1))
    logger = WandbLogger(save_dir=str(tmp_path), offline=True, project="p")
    assert internals.wandb_init_kwargs(logger)["project"] == "p"
    assert isinstance(internals.mkldnn_bf16_supported(), bool)
