"""Parameter profiles: params.yaml (the embedded default) and every configs/*.yaml profile.

A profile is applied with `cp configs/<profile>.yaml params.yaml`, so each must be a complete
params file: it validates, it has exactly the sections and keys params.yaml spells out (the
schema would otherwise fill a forgotten key with its default without a word), and the paper
profile carries the paper's values.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from safurai_csharp.config import ACCELERATE_CONFIG_DIR, Params, load_params, parse_params

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "params.yaml"
PAPER = ROOT / "configs" / "paper.yaml"
# Every YAML directly in configs/ is a params profile; configs/accelerate/ holds launcher configs.
CONFIG_PROFILES = sorted((ROOT / "configs").glob("*.yaml"))
PROFILES = [DEFAULT, *CONFIG_PROFILES]


def _raw(path: Path) -> dict[str, Any]:
    raw = yaml.safe_load(path.read_text())
    assert isinstance(raw, dict), f"{path}: not a mapping of sections"
    return raw


def _section_model(model: type[BaseModel], key: str) -> type[BaseModel] | None:
    field = model.model_fields.get(key)
    ann = field.annotation if field else None
    return ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None


def flat_keys(raw: dict[str, Any], model: type[BaseModel] = Params, prefix: str = "") -> set[str]:
    """Dotted keys of `raw`, descending into every schema section (where a missing key would be
    defaulted); free-form mappings (evolve.rounds, eval_multipl_e.targets) are one key each."""
    keys = set()
    for key, value in raw.items():
        path = f"{prefix}{key}"
        keys.add(path)
        sub = _section_model(model, key)
        if sub is not None and isinstance(value, dict):
            keys |= flat_keys(value, sub, path + ".")
    return keys


def test_the_profiles_are_found():
    names = {p.name for p in CONFIG_PROFILES}
    assert {"tiny.yaml", "paper.yaml"} <= names
    assert not any(p.parent.name == "accelerate" for p in CONFIG_PROFILES)


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_profile_validates(profile, monkeypatch):
    monkeypatch.chdir(ROOT)  # sft_qlora.accelerate_config is read relative to the repository root
    load_params(profile)


def test_default_spells_out_every_section_of_the_schema():
    assert set(_raw(DEFAULT)) == set(Params.model_fields)


@pytest.mark.parametrize("profile", CONFIG_PROFILES, ids=lambda p: p.name)
def test_profile_has_the_sections_and_keys_of_params_yaml(profile):
    raw, default = _raw(profile), _raw(DEFAULT)
    assert set(raw) == set(default), (
        f"{profile.name}: missing sections {sorted(set(default) - set(raw))}, "
        f"extra sections {sorted(set(raw) - set(default))}")
    got, want = flat_keys(raw), flat_keys(default)
    assert got == want, (f"{profile.name}: keys params.yaml spells but it does not {sorted(want - got)}, "
                         f"keys it spells but params.yaml does not {sorted(got - want)}")


def test_flat_keys_catch_a_forgotten_nested_key():
    raw = _raw(PAPER)
    del raw["sft_qlora"]["quantization"]["double_quant"]
    parse_params(raw)  # the schema alone would default it silently ...
    assert "sft_qlora.quantization.double_quant" in flat_keys(_raw(DEFAULT)) - flat_keys(raw)  # ... this does not


# -- the paper profile -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def paper(request):
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return load_params(PAPER)
    finally:
        os.chdir(cwd)


def test_paper_models(paper):
    assert paper.base_model.source == "codellama/CodeLlama-34b-hf"
    assert paper.teacher.source == "codellama/CodeLlama-34b-Instruct-hf"
    assert paper.teacher.engine == "vllm" and paper.teacher.engine_options.vllm.tensor_parallel_size == 2
    assert paper.merge.registered_model == "safurai-csharp-codellama34b"
    assert paper.mlflow.experiment == "safurai-csharp-paper"


def test_paper_data_scale(paper):
    assert paper.generate.num_tasks == 100_000
    assert paper.filter.keep == 4000
    assert sorted(paper.evolve.rounds) == ["1", "2", "3"]


def test_paper_training_recipe(paper):
    cfg = paper.sft_qlora
    q, lora = cfg.quantization, cfg.lora
    assert (q.enabled, q.quant_type, q.double_quant, q.compute_dtype) == (True, "nf4", True, "bfloat16")
    assert (lora.r, lora.alpha, lora.dropout, lora.target_modules) == (32, 16, 0.05, "all-linear")
    assert cfg.gradient_checkpointing and cfg.packing
    assert (cfg.epochs, cfg.max_steps) == (3, -1)
    assert (cfg.learning_rate, cfg.lr_scheduler) == (3e-4, "cosine")
    assert (cfg.micro_batch_size, cfg.gradient_accumulation_steps) == (2, 4)
    assert cfg.max_seq_length == 4096
    assert cfg.optim == "paged_adamw_32bit"
    assert cfg.accelerate_config is not None


def test_paper_evaluation(paper):
    ev = paper.eval_multipl_e
    assert (ev.n, ev.temperature, ev.top_p) == (5, 0.2, 0.95)
    assert ev.engine == "vllm" and ev.engine_options.vllm.tensor_parallel_size == 2
    assert set(ev.modes) == {"official", "corrected"}
    assert {"base", "merged"} <= set(ev.targets)


def test_paper_accelerate_config_is_launchable(paper, monkeypatch):
    """What sft_qlora checks before and when it relaunches itself: the schema's rules (file
    under configs/accelerate/, sharded configs need bfloat16 quant storage), the file exists
    (launch.config_digest), and accelerate itself reads it; 2 processes for the paper's 2 GPUs."""
    from accelerate.commands.config.config_args import ClusterConfig

    from safurai_csharp.config import accelerate_distributed_type
    from safurai_csharp.training import launch

    monkeypatch.chdir(ROOT)
    cfg = paper.sft_qlora
    path = Path(cfg.accelerate_config)
    assert Path(ACCELERATE_CONFIG_DIR) in path.parents and path.suffix in (".yaml", ".yml")
    assert path.is_file()
    assert launch.config_digest(cfg.accelerate_config)  # what relaunch() checks first
    assert launch.launch_command(cfg.accelerate_config, "params.yaml")[3:5] == ["--config_file", str(path)]

    cluster = ClusterConfig.from_yaml_file(str(path))
    assert cluster.num_processes == 2 and cluster.num_machines == 1
    kind = accelerate_distributed_type(path)
    assert kind in ("MULTI_GPU", "FSDP", "DEEPSPEED")
    if launch.sharded(cfg.accelerate_config):
        assert cfg.quantization.quant_storage == "bfloat16"


def test_check_params_cli_accepts_the_paper_profile():
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "safurai-csharp").is_file(), f"no safurai-csharp console script in {bin_dir}"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(["safurai-csharp", "check-params", "--params", "configs/paper.yaml"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "configs/paper.yaml: ok" in proc.stdout
