"""Exactly which tokens carry loss: the completion (answer + EOS) of every example, never a
prompt token, never padding, with and without packing; and packed examples never attend to
each other."""

import pytest

torch = pytest.importorskip("torch")

from conftest import tiny_params, write_sft_data  # noqa: E402

from safurai_csharp.training.trainer import prepare  # noqa: E402

IGNORE = -100


def expected_labels(tokenizer, rows):
    """token ids -> labels: the prompt tokenized alone (as inference does; masked), then the
    completion tokenized alone and EOS (carrying loss). training/data.py says why not jointly."""
    out = {}
    for r in rows:
        prompt = tokenizer(r["prompt"])["input_ids"]
        completion = tokenizer(r["completion"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        assert tokenizer.decode(completion) == r["completion"] + tokenizer.eos_token
        out[tuple(prompt + completion)] = [IGNORE] * len(prompt) + completion
    return out


def segments(batch, packing):
    """(row, start, end) of every example in a collated batch."""
    if packing:  # padding-free: one flat row, an example starts wherever position_ids restart at 0
        assert batch["input_ids"].shape[0] == 1 and "attention_mask" not in batch
        pos = batch["position_ids"][0]
        starts = (pos == 0).nonzero().flatten().tolist() + [pos.numel()]
        return [(0, a, b) for a, b in zip(starts, starts[1:])]
    lengths = batch["attention_mask"].sum(dim=1).tolist()
    return [(i, 0, n) for i, n in enumerate(lengths)]


def _prepare(tmp_path, model_dir, packing):
    data = write_sft_data(tmp_path / "data", train=10, validation=0)
    params = tiny_params(model_dir, data, tmp_path / "out" / "adapter", packing=packing, max_seq_length=320,
                         micro_batch_size=3, quantization={"enabled": False, "compute_dtype": "float32"})
    return prepare(params.sft_qlora, checkpoint_root=tmp_path / "ckpt")


@pytest.fixture(params=[False, True], ids=["padded", "packed"])
def prepared(request, tmp_path, tiny_qwen):
    return request.param, _prepare(tmp_path, tiny_qwen, request.param)


def test_only_completion_tokens_carry_loss(prepared):
    packing, prep = prepared
    tok = prep.trainer.processing_class
    expected = expected_labels(tok, prep.splits["train"].rows)
    assert all(len(k) < 320 for k in expected)  # nothing truncated: the check is exact
    seen = []
    for batch in prep.trainer.get_train_dataloader():
        ids, labels = batch["input_ids"], batch["labels"]
        covered = torch.zeros_like(ids, dtype=torch.bool)
        for row, a, b in segments(batch, packing):
            key = tuple(ids[row, a:b].tolist())
            assert key in expected, "an example was cut or merged"
            assert labels[row, a:b].tolist() == expected[key]
            covered[row, a:b] = True
            seen.append(key)
        # padding (everything outside the examples) never carries loss
        assert (labels[~covered] == IGNORE).all()
        if not packing:
            assert (ids[~covered] == tok.pad_token_id).all()
    assert sorted(seen) == sorted(expected)  # every example exactly once
    some = next(iter(expected.values()))  # starts in the prompt (masked), ends with the trained EOS
    assert some[0] == IGNORE and some[-1] == tok.eos_token_id


def test_packed_examples_do_not_attend_to_each_other(tmp_path, tiny_qwen):
    """Packing is padding-free (position_ids restart per example, no attention mask): the model
    must build a block-diagonal mask from position_ids, or examples would see each other."""
    prep = _prepare(tmp_path, tiny_qwen, packing=True)
    model = prep.trainer.model.eval()
    batch = next(iter(prep.trainer.get_train_dataloader()))
    segs = segments(batch, packing=True)
    assert len(segs) > 1
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits
        for _, a, b in segs:
            alone = model(input_ids=batch["input_ids"][:, a:b]).logits
            torch.testing.assert_close(packed[:, a:b], alone, atol=1e-4, rtol=1e-4)
