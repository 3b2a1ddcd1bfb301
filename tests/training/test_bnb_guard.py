"""LoRA gradients of the 4-bit model equal those of a dequantized reference, even after a
no-grad eval forward (bitsandbytes' CPU repacking trap, training/bnb_guard.py)."""

import copy

import pytest

torch = pytest.importorskip("torch")
bnb = pytest.importorskip("bitsandbytes")

from safurai_csharp.config import SftQloraParams  # noqa: E402
from safurai_csharp.training.bnb_guard import (  # noqa: E402
    RepackedWeightsError, check_not_repacked, guard_4bit, repacked_layers)
from safurai_csharp.training.model import bnb_config, load_model  # noqa: E402

CPU_REPACKS = bool(bnb.functional.has_avx512bf16())


def params(compute_dtype="float32") -> SftQloraParams:
    return SftQloraParams(quantization={"compute_dtype": compute_dtype})


def load_unguarded(model_dir, compute_dtype="float32"):
    from transformers import AutoModelForCausalLM

    cfg = params(compute_dtype)
    return AutoModelForCausalLM.from_pretrained(model_dir, quantization_config=bnb_config(cfg.quantization),
                                                dtype=getattr(torch, compute_dtype), device_map="cpu")


def dequantized_reference(model_dir, model_4bit):
    """The same network in float32 with every 4-bit weight replaced by its dequantized value."""
    from transformers import AutoModelForCausalLM

    ref = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    ref_modules = dict(ref.named_modules())
    for name, m in model_4bit.named_modules():
        if isinstance(m, bnb.nn.Linear4bit):
            w = bnb.functional.dequantize_4bit(m.weight.data, m.weight.quant_state).float()
            ref_modules[name].weight.data.copy_(w)
    return ref


def with_same_lora(model_4bit, ref):
    from peft import LoraConfig, get_peft_model

    # init_lora_weights=False: A and B both random, so every layer's A gets a gradient too
    cfg = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear",
                     init_lora_weights=False, task_type="CAUSAL_LM")
    torch.manual_seed(0)
    p4 = get_peft_model(model_4bit, cfg)
    pr = get_peft_model(ref, copy.deepcopy(cfg))
    lora = {k: v.float() for k, v in p4.state_dict().items() if "lora_" in k}
    missing = set(lora) - set(pr.state_dict())
    assert not missing
    pr.load_state_dict(lora, strict=False)
    return p4, pr


def lora_grads(model, ids):
    model.train()
    model.zero_grad()
    model(input_ids=ids, labels=ids).loss.backward()
    return {n: p.grad.detach().float().flatten() for n, p in model.named_parameters() if p.requires_grad}


def eval_forward(model, ids):
    model.eval()
    with torch.no_grad():
        model(input_ids=ids)


def min_cosine(g, ref):
    assert g.keys() == ref.keys() and g
    return min(torch.nn.functional.cosine_similarity(g[k], ref[k], dim=0).item() for k in g)


IDS = torch.randint(3, 400, (2, 24), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize(("arch", "compute_dtype", "eval_first"), [
    ("tiny_llama", "float32", True), ("tiny_llama", "bfloat16", True),
    ("tiny_qwen", "bfloat16", False), ("tiny_qwen", "bfloat16", True)])
def test_guarded_4bit_lora_gradients_match_dequantized_reference(request, arch, compute_dtype, eval_first):
    model_dir = request.getfixturevalue(arch)
    model = load_model(params(compute_dtype), model_dir)  # the stage's loader: guarded
    ref = dequantized_reference(model_dir, model)
    p4, pr = with_same_lora(model, ref)
    if eval_first:  # what generate(), a sanity check or Trainer.evaluate() does
        eval_forward(p4, IDS)
        assert repacked_layers(p4) == []
    cos = min_cosine(lora_grads(p4, IDS), lora_grads(pr, IDS))
    assert cos > 0.99, f"LoRA gradients of the 4-bit model diverge from the dequantized reference: {cos:.4f}"


@pytest.mark.skipif(not CPU_REPACKS, reason="this CPU has no AVX512-BF16: bitsandbytes never repacks here")
def test_without_the_guard_an_eval_forward_silently_breaks_gradients(tiny_llama):
    """The trap itself, so the test above is known to detect it on this machine."""
    model = load_unguarded(tiny_llama)
    ref = dequantized_reference(tiny_llama, model)
    p4, pr = with_same_lora(model, ref)
    g_ref = lora_grads(pr, IDS)
    assert min_cosine(lora_grads(p4, IDS), g_ref) > 0.99  # fine before any eval forward
    eval_forward(p4, IDS)
    assert repacked_layers(p4)
    cos = min_cosine(lora_grads(p4, IDS), g_ref)  # no error raised, the loss looks normal...
    assert cos < 0.9, cos  # ...and the gradients are wrong (0.50 measured on the worst LoRA tensor)


@pytest.mark.skipif(not CPU_REPACKS, reason="this CPU has no AVX512-BF16: bitsandbytes never repacks here")
def test_guard_converts_back_an_already_repacked_model(tiny_llama):
    model = load_unguarded(tiny_llama)
    ref = dequantized_reference(tiny_llama, model)  # from the weights as first quantized
    p4, pr = with_same_lora(model, ref)
    eval_forward(p4, IDS)
    assert repacked_layers(p4)
    report = guard_4bit(p4)
    assert report.unpacked == report.layers > 0 and repacked_layers(p4) == []
    assert min_cosine(lora_grads(p4, IDS), lora_grads(pr, IDS)) > 0.99


def test_check_fails_loudly_on_a_repacked_layer(tiny_llama):
    """Runs on any CPU: repack one layer by hand, as bitsandbytes' forward would."""
    model = load_model(params(), tiny_llama)
    check_not_repacked(model, "now")
    layer = model.model.layers[0].mlp.down_proj
    layer.weight.data, layer.weight.quant_state = bnb.functional._convert_weight_packed_for_cpu(
        layer.weight.data, layer.weight.quant_state)
    with pytest.raises(RepackedWeightsError, match="inference-only"):
        check_not_repacked(model, "at step 3")
    assert guard_4bit(model).unpacked == 1
    check_not_repacked(model, "now")
