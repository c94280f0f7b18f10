"""Loading a pre-trained DPM for a later stage: a diffrep checkpoint or an official PDAE one.

- diffrep: a Lightning ``.ckpt`` written by ``diffrep fit --config configs/dpm.yaml``; its
  ``diffrep`` entry holds the U-Net and schedule, and the EMA weights are taken. A PDAE
  checkpoint also works: it stores its frozen DPM once, so it is self-contained.
- official PDAE (ckczzj/PDAE): ``checkpoint.pt`` with ``ema_denoise_fn`` and the ``config.yml``
  beside it: the official trainer's training config, with the U-Net under ``denoise_fn_config``,
  the schedule under ``diffusion_config`` and the image size under
  ``train_dataset_config.image_size`` (older files: ``dataset_config``).
"""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

from diffrep.diffusion.schedule import ScheduleConfig
from diffrep.errors import MissingFileError
from diffrep.nets.unet import UNet, UNetConfig


class CheckpointError(MissingFileError):
    """A checkpoint is missing, unreadable or does not fit; the message names the fix."""


#: set to 1 (``diffrep ... --trust_checkpoints true`` does) to load checkpoints that need full unpickling
TRUST_ENV = "DIFFREP_TRUST_CHECKPOINTS"


def trusting_pickles() -> bool:
    """Whether the user said, for this run, that its checkpoints may run pickled code when loaded."""
    return os.environ.get(TRUST_ENV, "") not in ("", "0", "false", "False")


def load_checkpoint_file(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """``torch.load`` with ``weights_only=True``: tensors, numbers, strings and containers only, so a
    checkpoint someone sent you cannot run code when it is read (diffrep's own checkpoints and the
    official PDAE ones need nothing else). A file that does need full unpickling is refused with the
    flag that allows it; with that flag it is loaded, with a warning."""
    if trusting_pickles():
        warnings.warn(f"loading {path} with full unpickling ({TRUST_ENV}=1 / --trust_checkpoints true): "
                      "it can run arbitrary code; do this only for files you trust", stacklevel=2)
        return torch.load(path, map_location=map_location, weights_only=False)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "Unsupported global" not in str(err):  # a broken file, not a refused Python object
            raise
        raise CheckpointError(
            f"{path} holds Python objects beyond weights, and loading it would run their pickled code. "
            "If you trust the file, pass --trust_checkpoints true (or set DIFFREP_TRUST_CHECKPOINTS=1)"
        ) from None


def read_checkpoint(path: str | Path, what: str = "pre-trained DPM checkpoint") -> dict[str, Any]:
    """``load_checkpoint_file`` with a clear error; ``what`` names the checkpoint in the message
    (the DPM one names the command that makes it)."""
    path = Path(path)
    if not path.is_file():
        if what == "pre-trained DPM checkpoint":
            raise CheckpointError(
                f"pre-trained DPM checkpoint {path} does not exist. Train one with "
                "`diffrep fit --config configs/dpm.yaml` (writes runs/dpm/checkpoints/last.ckpt) "
                "or pass --model.init_args.dpm_checkpoint PATH"
            )
        raise CheckpointError(f"{what} {path} does not exist; train it first or pass the right path")
    try:
        return load_checkpoint_file(path)
    except CheckpointError:
        raise
    except Exception as err:  # torch raises many types for a broken file
        raise CheckpointError(f"cannot read checkpoint {path}: {err}. The file is corrupt or not a checkpoint") from err


def ema_state_dict(checkpoint: dict[str, Any], prefix: str) -> dict[str, torch.Tensor]:
    """The weights under ``prefix`` with their EMA values where the checkpoint holds them."""
    state = checkpoint["state_dict"]
    out = {}
    for key, value in state.items():
        if key.startswith(prefix):
            name = key[len(prefix) :]
            out[name] = state.get("ema." + (prefix + name).replace(".", "__"), value)
    return out


def load_dpm(path: str | Path, config_path: str | Path | None = None) -> tuple[UNet, ScheduleConfig]:
    """The frozen-to-be U-Net (EMA weights) and its noise schedule from either checkpoint format."""
    unet, schedule, _ = load_dpm_with_origin(path, config_path)
    return unet, schedule


def dpm_origin(checkpoint: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """Which DPM training step a later stage builds on: ``{"path", "step"}``. A PDAE checkpoint
    passes on the origin it recorded (its frozen DPM is inside it); an official file has no step."""
    meta = checkpoint.get("diffrep", {})
    if "dpm" in meta:
        return dict(meta["dpm"])
    if meta.get("method") == "PDAE":  # written before PDAE recorded its DPM's step
        return {"path": f"the DPM inside {path}", "step": None}
    step = checkpoint.get("global_step", checkpoint.get("step"))
    return {"path": str(path), "step": int(step) if step is not None else None}


def load_dpm_with_origin(
    path: str | Path, config_path: str | Path | None = None
) -> tuple[UNet, ScheduleConfig, dict[str, Any]]:
    """``load_dpm`` and the DPM's origin (``dpm_origin``), read from one load of the file."""
    checkpoint = read_checkpoint(path)
    if "diffrep" in checkpoint:
        meta = checkpoint["diffrep"]
        if "unet" not in meta:
            raise CheckpointError(f"{path} is a {meta.get('method')} checkpoint, not a DPM; pass the DPM's checkpoint")
        if "class_path" in meta["unet"]:
            raise CheckpointError(f"{path} is a DPM on your own network ({meta['unet']['class_path']}); PDAE and the "
                                  "DPM features read a diffrep U-Net DPM (PDAE's shift net is built on its encoder "
                                  "half): train the DPM with a unet: {...} of UNetConfig's settings")
        unet = UNet(UNetConfig(**meta["unet"]))
        # A PDAE checkpoint holds its frozen DPM under decoder.<official U-Net names>.
        prefix = "decoder." if meta.get("method") == "PDAE" else "unet."
        wanted = unet.state_dict().keys()
        state = {k: v for k, v in ema_state_dict(checkpoint, prefix).items() if k in wanted or prefix == "unet."}
        schedule = ScheduleConfig(**meta["schedule"])
    elif "ema_denoise_fn" in checkpoint:
        unet_cfg, schedule = official_config(Path(config_path) if config_path else Path(path).with_name("config.yml"))
        unet = UNet(unet_cfg)
        state = checkpoint["ema_denoise_fn"]
    else:
        raise CheckpointError(f"{path} is neither a diffrep DPM checkpoint nor an official PDAE checkpoint.pt")
    try:
        unet.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit the U-Net its config describes: {err}") from err
    return unet, schedule, dpm_origin(checkpoint, path)


def official_config(path: Path) -> tuple[UNetConfig, ScheduleConfig]:
    """Translate an official PDAE ``config.yml`` into diffrep's U-Net and schedule configs."""
    import yaml

    if not path.is_file():
        raise CheckpointError(f"official PDAE checkpoints need their config.yml; none at {path} (pass dpm_config)")
    config = yaml.safe_load(path.read_text())
    net = config.get("denoise_fn_config") or config.get("model_config")
    if net is None:
        raise CheckpointError(f"{path} has no denoise_fn_config section")
    diff = config.get("diffusion_config", {})
    unet = UNetConfig(
        in_channels=net["input_channel"],
        base_channels=net["base_channel"],
        channel_mult=list(net["channel_multiplier"]),
        num_res_blocks=net["num_residual_blocks_of_a_block"],
        attention_resolutions=list(net.get("attention_resolutions", [])),
        num_heads=net.get("num_heads", 1),
        head_channels=net.get("head_channel", -1),
        dropout=net.get("dropout", 0.0),
        image_size=official_image_size(config, path),
        new_attention_order=net.get("use_new_attention_order", False),
    )
    schedule = ScheduleConfig(
        kind="discrete",
        num_timesteps=diff.get("timesteps", 1000),
        beta_schedule=diff.get("betas_type", "linear"),
        beta_start=float(diff.get("linear_beta_start", 1e-4)),
        beta_end=float(diff.get("linear_beta_end", 0.02)),
    )
    return unet, schedule


def official_image_size(config: dict[str, Any], path: Path) -> int:
    """The image size an official DPM was trained at: ``train_dataset_config.image_size`` (what
    the official trainer saves), else ``dataset_config.image_size``; never a guess."""
    for section in ("train_dataset_config", "dataset_config"):
        size = (config.get(section) or {}).get("image_size")
        if size is not None:
            return int(size)
    raise CheckpointError(
        f"{path} gives no image size: add `image_size: <pixels>` under train_dataset_config (the key the "
        "official PDAE trainer writes) for the size the DPM was trained at"
    )
