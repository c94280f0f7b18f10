"""Weights that arrive from outside a diffrep fit: the EMA follows weights loaded by hand, and the
papers' released checkpoints (score_sde's for DRL/VDRL, phizaz/diffae's Lightning files for Diff-AE)
load into their methods through ``official_checkpoint``. The checkpoints here are synthetic: written
by the test in each official layout from the official key names, at tiny widths."""

from __future__ import annotations

import torch
from conftest import make_drl


def test_encode_after_loading_an_encoder_by_hand_uses_the_loaded_weights():
    """The trap of issue 42: loading into .encoder left encode() on the EMA copy made at construction."""
    model, donor = make_drl(ema_decay=0.9), make_drl(ema_decay=0.9)
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
    getattr(model.encoder, first).load_state_dict(getattr(make_drl(ema_decay=0.9).encoder, first).state_dict())
    changed = {n for n in model.ema.names if not torch.equal(before[n], model.ema.shadow(n))}
    assert changed and all(n.startswith(f"encoder.{first}.") for n in changed)


def test_a_whole_state_dict_keeps_its_own_shadows_and_one_without_them_syncs():
    model = make_drl(ema_decay=0.9)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    shadow_key = next(k for k in state if k.startswith("ema.") and "encoder" in k)
    state[shadow_key] += 1.0  # a checkpoint whose EMA differs from its raw weights
    model.load_state_dict(state)
    torch.testing.assert_close(model.state_dict()[shadow_key], state[shadow_key])
    raw_only = {k: v + 0.5 for k, v in state.items() if not k.startswith("ema.") and v.is_floating_point()}
    model.load_state_dict(raw_only, strict=False)
    name = next(n for n in model.ema.names if n.startswith("encoder."))
    torch.testing.assert_close(model.ema.shadow(name), dict(model.named_parameters())[name].detach())
