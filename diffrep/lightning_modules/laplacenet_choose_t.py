"""LaplaceNet's ``choose_t`` (the official ``--check_t``): which noise level t a time-conditioned WRN is
fine-tuned at, chosen by short supervised runs from the start weights, one per candidate t, keeping the
state with the lowest supervised training loss of any epoch (as the official loop does). Nothing but the
training loss chooses: no held-out split, never the test split."""

from __future__ import annotations

import copy
import math
from typing import Any

import lightning as L
import numpy as np
import torch

from diffrep.nets.classifier import logit


def choose_t(model: L.LightningModule) -> dict[str, Any]:
    """Run every candidate's short warm-up on ``model`` (a ``LaplaceNet``: its classifier, data, settings, lr
    schedule, mixup draw and loss; not imported here, which imports this) and leave its classifier at the
    best state; returns {loss, t, epoch} of that state."""
    settings = model.settings["choose_t"]
    start = copy.deepcopy(model.classifier.state_dict())
    best: dict[str, Any] = {"loss": math.inf}
    length = model.rampdown_length() + settings.epochs
    step = 0
    for run, t in enumerate(settings.candidates):
        model.classifier.load_state_dict(start)
        with torch.no_grad():
            model.classifier.backbone.param_t.fill_(logit(t))
        model.classifier.train()
        optimizer = model.make_optimizer()
        for epoch in range(settings.epochs):
            per_pass, losses = model.data.batches.labelled_batches_per_pass, []
            for i, batch in enumerate(model.data.check_t_dataloader(run, epoch)):
                batch = [b.to(model.device) for b in batch]
                model.set_lr(optimizer, epoch, i % per_pass, per_pass, length)
                optimizer.zero_grad()
                lam, permutation = model.mixup_draw(step, len(batch[1]), model.settings["mixup"].warmup, stream=1)
                loss = model.composite_loss(batch, lam, permutation)
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
                step += 1
            mean = float(np.mean(losses))
            if mean < best["loss"]:
                best = {"loss": mean, "t": float(t), "epoch": epoch,
                        "state": copy.deepcopy(model.classifier.state_dict())}
    model.classifier.load_state_dict(best.pop("state"))
    return best
