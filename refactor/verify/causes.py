"""The likely cause of a divergence, from which stream diverged first and how (DESIGN.md §6).

The streams are ordered in time (see `records.compare`), so the first
divergence says what the converted run did differently before anything else
could: a learning rate already different at step 0 can only come from the
optimizer's arguments, while equal losses followed by different parameters
point at the update itself.
"""

from __future__ import annotations

import math
from typing import Any

from lightify.verify.records import Divergence

OPTIMIZER_ARGUMENTS = (
    "optimizer arguments: the learning rate (or parameter groups) differs from the first "
    "step, so the optimizer was built with other arguments"
)
SCHEDULER_CADENCE = (
    "scheduler cadence: the learning rate changed at a different step; check the "
    'scheduler\'s "interval" ("epoch" or "step"), its frequency and where scheduler.step() ran'
)
OPTIMIZER_ORDER = (
    "optimizer order: several optimizers stepped in a different order "
    "(manual optimization, alternating updates)"
)
UPDATE = (
    "the update: the same loss led to different parameters; check gradient clipping, "
    "gradient accumulation and zero_grad (when, and set_to_none)"
)
REDUCTION = (
    "loss reduction or scaling: the converted loss is {ratio:.6g} times the original's; "
    'check reduction="sum" vs "mean", and divisions by the batch size or accumulation steps'
)
FIRST_LOSS = (
    "initialisation, data order or RNG consumption: the very first loss differs; check "
    "seeding, the order in which models and loaders are created, and random numbers "
    "drawn before training"
)
LATER_LOSS = (
    "data order or RNG consumption: the same weights gave a different loss; check for an "
    "extra or missing pass over a DataLoader (each pass draws from the global RNG), "
    "random numbers drawn in a different order, and train/eval mode (dropout)"
)
EVALUATION_PASSES = (
    "evaluation passes: one run evaluated more often than the other; check that validation "
    "runs when the script validated (every epoch, check_val_every_n_epoch) and that no "
    "test pass was added or dropped"
)
EVALUATION_VALUES = (
    "evaluation: the same weights gave different evaluation outputs; check train/eval mode, "
    "the evaluated data, and which weights were evaluated"
)
MONITOR = (
    "the validation value a scheduler decides on: ReduceLROnPlateau (or early stopping) got "
    "a different number; pass the script's own value, not Lightning's float32 copy of a "
    "logged metric"
)
BUFFERS = (
    "buffers: the parameters agree but batch-norm running statistics (or other buffers) do "
    "not; check forward passes made in training mode that only one run makes (Lightning's "
    "sanity check validates before training: num_sanity_val_steps=0)"
)
LENGTH = (
    "loop bounds: one run trained for fewer steps; check max_epochs, max_steps, "
    "limit_train_batches and early stopping"
)

_RATIO_RUN = 3
"""Consecutive losses at one ratio that make the ratio constant, whatever its value."""
_RATIO_TOLERANCE = 1e-4


def likely_cause(
    divergence: Divergence, original: dict[str, Any], converted: dict[str, Any]
) -> str:
    """One sentence: what most likely made the converted run diverge first, and what to check."""
    if divergence.field == "count":
        return {"eval": EVALUATION_PASSES, "monitor": MONITOR}.get(divergence.stream, LENGTH)
    if divergence.stream == "steps":
        if divergence.field == "lrs":
            return OPTIMIZER_ARGUMENTS if divergence.index == 0 else SCHEDULER_CADENCE
        if divergence.field == "buffer_sum":
            return BUFFERS
        return OPTIMIZER_ORDER if divergence.field == "optimizer" else UPDATE
    if divergence.stream == "monitor":
        return MONITOR
    if divergence.stream == "eval":
        return EVALUATION_VALUES
    ratio = _constant_ratio(original["losses"], converted["losses"], divergence.index)
    if ratio is not None:
        return REDUCTION.format(ratio=ratio)
    return FIRST_LOSS if divergence.steps_done == 0 else LATER_LOSS


def _constant_ratio(original: list[float], converted: list[float], start: int) -> float | None:
    """converted / original at ``start`` when it looks like a scaling, else None.

    A scaling shows as a whole-number ratio (or its inverse: a sum against a mean
    over a batch), or as one ratio held over several losses (an optimizer such as
    Adam is nearly blind to the scale of its gradients, so the ratio persists).
    """
    ratios = []
    for o, c in zip(original[start : start + _RATIO_RUN], converted[start:], strict=False):
        if o == 0 or not (math.isfinite(o) and math.isfinite(c)):
            break
        ratios.append(c / o)
    if not ratios or ratios[0] <= 0 or math.isclose(ratios[0], 1, rel_tol=_RATIO_TOLERANCE):
        return None
    ratio = ratios[0]
    if _whole(ratio) or _whole(1 / ratio):
        return ratio
    if len(ratios) == _RATIO_RUN and all(
        math.isclose(r, ratio, rel_tol=_RATIO_TOLERANCE) for r in ratios
    ):
        return ratio
    return None


def _whole(value: float) -> bool:
    """A whole number of at least 2, up to float32 rounding."""
    return value >= 2 - _RATIO_TOLERANCE and math.isclose(
        value, round(value), rel_tol=_RATIO_TOLERANCE
    )
