"""The 4-bit "eval-forward trap" of bitsandbytes on CPU, and the guard against it.

bitsandbytes 0.50 `Linear4bit.forward` (bitsandbytes/nn/modules.py), on a CPU with
AVX512-BF16, when the module is in eval mode and its input does not require grad, converts
the layer's 4-bit weight *in place* to the layout of a fused inference kernel
(`functional._convert_weight_packed_for_cpu`: nibbles re-tiled, double-quantized block
scales expanded to bf16, `quant_state.packing_format_for_cpu = True`). From then on every
call of that layer, in train mode too, goes through `matmul_4bit`'s shortcut to
`gemv_4bit`, which has no autograd: no gradient flows through the frozen base weight to the
layers below it, so the LoRA gradients of every layer but the last are wrong while the loss
looks normal (layers with a bias fail loudly instead: an in-place add on a leaf).

Any no-grad eval forward arms it: generate(), a sanity check, and `Trainer.evaluate()` at
every eval_steps in the middle of training. The guard, applied to every 4-bit model this
package loads, right after loading and before any forward:

1. clears the per-module switch the repacking tests (`support_avx512bf16_for_cpu`), so the
   eval path uses the ordinary dequantize + matmul (correct, somewhat slower);
2. converts back any layer already repacked (best effort: the expanded scales went through
   bf16, so such a layer's weights can differ in the last bits; a warning says so);
3. `FourBitGuardCallback` re-checks at the start of training, at every optimizer step and
   after every evaluation, and stops training with an error if a layer is repacked (a future
   bitsandbytes that repacks by another route fails loudly, never silently).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

SWITCH = "support_avx512bf16_for_cpu"


class RepackedWeightsError(RuntimeError):
    """A 4-bit layer is in bitsandbytes' inference-only CPU layout while training."""


@dataclass(frozen=True)
class GuardReport:
    layers: int        # 4-bit linear layers found
    unpacked: int      # of them already repacked and converted back
    switch_found: int  # of them that had the repacking switch (0 on a bitsandbytes without it)


def _linear4bit_layers(model: Any) -> list[tuple[str, Any]]:
    try:
        from bitsandbytes.nn import Linear4bit
    except ImportError:  # no bitsandbytes: nothing can be 4-bit
        return []
    return [(name, m) for name, m in model.named_modules() if isinstance(m, Linear4bit)]


def is_repacked(module: Any) -> bool:
    state = getattr(getattr(module, "weight", None), "quant_state", None)
    return bool(getattr(state, "packing_format_for_cpu", False))


def repacked_layers(model: Any) -> list[str]:
    return [name for name, m in _linear4bit_layers(model) if is_repacked(m)]


def guard_4bit(model: Any) -> GuardReport:
    """Make every 4-bit linear layer of `model` safe to train on CPU. Idempotent."""
    from bitsandbytes.functional import _convert_weight_packed_for_cpu_inverse

    layers = _linear4bit_layers(model)
    unpacked = switch_found = 0
    for _, m in layers:
        if hasattr(m, SWITCH):
            switch_found += 1
        setattr(m, SWITCH, False)  # the forward's repacking condition reads this instance attribute
        if is_repacked(m):
            m.weight.data, m.weight.quant_state = _convert_weight_packed_for_cpu_inverse(
                m.weight.data, m.weight.quant_state)
            m.quant_state = m.weight.quant_state
            unpacked += 1
    if unpacked:
        logger.warning("%d 4-bit layers had been repacked for bitsandbytes' CPU inference kernel (a no-grad "
                       "eval forward ran before training); converted back, block scales rounded to bf16. "
                       "Reload the model for bit-exact weights.", unpacked)
    if layers and switch_found < len(layers):
        logger.warning("this bitsandbytes' Linear4bit has no %s switch: the repacking guard relies on the "
                       "per-step check only", SWITCH)
    return GuardReport(layers=len(layers), unpacked=unpacked, switch_found=switch_found)


def check_not_repacked(model: Any, when: str) -> None:
    bad = repacked_layers(model)
    if bad:
        raise RepackedWeightsError(
            f"{len(bad)} 4-bit layers (e.g. {bad[0]}) are in bitsandbytes' inference-only CPU layout {when}: "
            f"their LoRA gradients would be silently wrong. Call training.bnb_guard.guard_4bit(model) right "
            f"after loading, before any forward.")


def guard_callback():
    """A transformers TrainerCallback applying the guard at train start and checking it throughout."""
    from transformers import TrainerCallback

    class FourBitGuardCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            if model is not None:
                guard_4bit(model)

        def on_step_begin(self, args, state, control, model=None, **kwargs):
            if model is not None:
                check_not_repacked(model, f"at step {state.global_step}")

        def on_evaluate(self, args, state, control, model=None, **kwargs):
            if model is not None:
                check_not_repacked(model, f"after the evaluation at step {state.global_step}")

    return FourBitGuardCallback()
