"""dvc.yaml's code deps cannot drift from the imports, nor its params from the cores' signatures
(issue #12; the params check is at the end of this file).

DVC reruns a stage when one of its `deps` changes, so a module a stage runs but does not list
leaves stale outputs in the cache (editing the pass@k estimator used to keep every cached eval
metric). For each stage, this test computes the import closure inside the package of the
stage's module `src/safurai_csharp/stages/<command>.py`, statically with `ast`: absolute and
relative imports, at the top of a module and inside functions (the heavy imports live there),
and fails when a module of the closure is not covered by the stage's `deps` (a dep is a file
or a directory that covers every file under it), unless ALLOWED lists it with the reason it
cannot change a stage's outputs.

How a closure is followed:
- `from pkg import name` where `name` is defined in (or re-exported by) `pkg/__init__.py`
  follows the package's `__init__` and everything it imports (`from ..csharp import
  make_executor` needs all of `csharp`).
- `import pkg.sub`, `from pkg.sub import x` and `from pkg import sub` (a submodule) follow
  `sub` only. Python runs `pkg/__init__.py` first, but what the stage calls lives in `sub`;
  the package's other re-exports are only imported, and nothing in this project registers
  itself on import (the engine and filter-step registries are explicit dicts), so running
  them changes no output.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PKG = "safurai_csharp"

# Modules a stage imports that cannot change what it writes to its outs and metrics. The
# closure does not continue through them (what they import serves them only).
ALLOWED = {
    # the version string, nothing else
    "src/safurai_csharp/__init__.py":
        "package marker: a docstring and __version__",
    "src/safurai_csharp/errors.py":
        "the UserError base class: how a failure is reported, never what a success writes",
    "src/safurai_csharp/tracking.py":
        "MLflow runs, params, metrics and lineage tags: written to the tracking store, never to a DVC out",
    "src/safurai_csharp/progress.py":
        "progress bars drawn on stderr (tqdm): how far a step is, never what it writes",
    "src/safurai_csharp/config/__init__.py": (
        "the params schema. DVC hashes the values a stage reads (its `params:`), and every profile "
        "spells out every key (tests/test_profiles.py), so no schema default reaches a stage; a schema "
        "edit that changes what a value means (a validator that rewrites it, SamplingParams.sampling) "
        "needs `dvc repro -f` of the stages that read that section. Listing it would rerun the whole "
        "pipeline (45 min) for every new knob. Stages import it as one package (its sections live in "
        "config/{base,runtime,data,training}.py), so the closure stops here"),
}


def _path(module: str) -> Path | None:
    base = SRC.joinpath(*module.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _is_package(module: str) -> bool:
    return (SRC.joinpath(*module.split(".")) / "__init__.py").is_file()


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".") if _is_package(module) else module.split(".")[:-1]
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


@cache
def imports(module: str) -> frozenset[str]:
    """The package's modules that `module` imports anywhere in its body (functions included)."""
    path = _path(module)
    assert path is not None, module
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == PKG}
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node)
            if source.split(".")[0] != PKG:
                continue
            submodules = {f"{source}.{a.name}" for a in node.names if _path(f"{source}.{a.name}")}
            found |= submodules
            if len(submodules) < len(node.names) or not _is_package(source):
                found.add(source)  # a name defined in the module or package itself
    for name in found:
        assert _path(name) is not None, f"{module} imports {name}, which is not a module of the package"
    return frozenset(found)


def closure(module: str) -> set[str]:
    """Source files (relative to the repo) of `module` and every package module it reaches."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if str(_path(name).relative_to(ROOT)) not in ALLOWED:
            todo += imports(name)
    return {str(_path(name).relative_to(ROOT)) for name in seen}


def _stages() -> dict[str, dict]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: body.get("do", body) for name, body in stages.items()}


def _stage_module(stage: dict) -> str:
    words = stage["cmd"].split()
    assert words[0] == "safurai-csharp", stage["cmd"]
    return f"{PKG}.stages.{words[1].replace('-', '_')}"


def covered(path: str, deps: list[str]) -> bool:
    return any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps)


@pytest.mark.parametrize("name", sorted(_stages()))
def test_stage_deps_cover_the_code_it_runs(name):
    stage = _stages()[name]
    module = _stage_module(stage)
    code_deps = [d for d in stage.get("deps", []) if d.startswith("src/")]
    for dep in code_deps:  # a dep that does not exist would hash as missing: a typo, not a dep
        assert (ROOT / dep).exists(), f"{name}: dep {dep} does not exist"
    missing = sorted(p for p in closure(module) - set(ALLOWED) if not covered(p, code_deps))
    assert not missing, (f"dvc.yaml stage {name} runs {module} but its deps do not list {missing}: add them "
                         "(or, for a module that cannot change the stage's outputs, a reason to ALLOWED here)")


def test_every_code_dep_is_code_the_stage_runs():
    """The converse, so deps do not pile up: a listed source file or directory holds at least one
    module of the stage's closure (a stale dep reruns the stage for edits that cannot matter)."""
    for name, stage in _stages().items():
        modules = closure(_stage_module(stage))
        for dep in (d for d in stage.get("deps", []) if d.startswith("src/")):
            assert any(covered(m, [dep]) for m in modules), f"{name}: dep {dep} holds no module it runs"


def test_the_closure_follows_function_level_and_relative_imports():
    generate = closure(f"{PKG}.stages.generate")
    assert "src/safurai_csharp/hashing.py" in generate  # `from ..hashing import path_digest` inside a function
    assert "src/safurai_csharp/engines/vllm_engine.py" in generate  # via engines/__init__.py
    assert "src/safurai_csharp/synth/steps.py" in generate
    assert "src/safurai_csharp/config/__init__.py" in generate and "src/safurai_csharp/engines/base.py" in generate
    split = closure(f"{PKG}.stages.split")
    assert "src/safurai_csharp/benchmark/translate.py" in split
    assert "src/safurai_csharp/benchmark/build.py" not in split  # a sibling re-exported by benchmark/__init__


def test_no_stage_module_imports_another():
    """A stage module reads as its pipeline step: what two stages share lives below them
    (synth, training, evaluation, ...), so a knob of one cannot change the other unseen."""
    stages = {f"{PKG}.stages.{p.stem}" for p in (SRC / PKG / "stages").glob("*.py") if p.stem != "__init__"}
    for stage in sorted(stages):
        assert not (imports(stage) & (stages - {stage})), f"{stage} imports {sorted(imports(stage) & stages)}"


@pytest.mark.parametrize("name", sorted(_stages()))
def test_a_stage_that_talks_to_the_teacher_depends_on_it(name):
    """generate, evolve and filter (its optional LLM judge) open the teacher through
    synth/teacher.py: its checkpoint and engine settings can change their outputs."""
    stage = _stages()[name]
    if name == "prepare_teacher" or "src/safurai_csharp/synth/teacher.py" not in closure(_stage_module(stage)):
        return
    assert "${teacher.model_dir}" in stage["deps"], name
    assert {"teacher.engine", "teacher.engine_options"} <= set(stage["params"]), name


# --- params: the sections a stage's core takes are in the stage's `params:` ---------------------
#
# A stage's core takes the params.yaml sections it reads, as their config models (issue #12:
# `generate(cfg: GenerateParams, tcfg: TeacherParams, sandbox_cfg: SandboxParams, ...)`), never
# the whole `Params`; the stage's `run` loads params.yaml and picks them. So its signature says
# which sections can change its outputs, and dvc.yaml must list each of them under `params:`,
# or a changed knob of that section leaves the stage's cached outputs in place.

# Cores that live below their stage module (the module's `run` calls them with its sections).
# evaluation.run_stage (eval_multipl_e, eval_dev) takes `cfg: Any`: it serves both sampling
# sections (EvalParams, EvalDevParams), which its stage modules pass explicitly.
CORES_BELOW = {
    "prepare_teacher": ["safurai_csharp.synth.teacher:prepare_teacher"],
    "merge": ["safurai_csharp.model_card:model_card"],
    "sft_qlora": ["safurai_csharp.training.trainer:train", "safurai_csharp.training.trainer:prepare"],
}


def _section_of_model() -> dict[type, str]:
    """Each section model -> its params.yaml key, from the fields of config.Params."""
    from safurai_csharp.config import Params

    return {field.annotation: name for name, field in Params.model_fields.items()}


def _core_functions(name: str, stage: dict) -> list:
    """The functions of the stage's module (but `run`, which takes the params file, and
    `add_parser`) and the stage's cores in CORES_BELOW."""
    import importlib
    import inspect

    module = importlib.import_module(_stage_module(stage))
    found = [f for n, f in inspect.getmembers(module, inspect.isfunction)
             if f.__module__ == module.__name__ and n not in ("run", "add_parser")]
    for ref in CORES_BELOW.get(name, []):
        mod, attr = ref.split(":")
        found.append(getattr(importlib.import_module(mod), attr))
    return found


def sections_taken(func) -> set[str]:
    """The params.yaml sections `func` takes, read from its type annotations (`X | None` and
    other unions included). Taking the whole Params is an error: it hides what the core reads."""
    import typing

    from safurai_csharp.config import Params

    keys = _section_of_model()

    def walk(tp) -> set[str]:
        assert tp is not Params, (f"{func.__module__}.{func.__qualname__} takes the whole Params: pass it the "
                                  "sections it reads, so dvc.yaml's params can be checked against its signature")
        if isinstance(tp, (list, tuple)):  # Callable[[A, B], R]'s argument list
            return {s for arg in tp for s in walk(arg)}
        own = {keys[tp]} if isinstance(tp, type) and tp in keys else set()
        return own | {s for arg in typing.get_args(tp) for s in walk(arg)}

    return {s for tp in typing.get_type_hints(func).values() for s in walk(tp)}


def listed_sections(stage: dict) -> set[str]:
    """The top-level params.yaml sections of the stage's `params:`. dvc.yaml lists a section
    whole (`sandbox`) or, where the stage reads only part of it, its keys one by one (evolve's
    `filter.execution`, `generate.chunk_size`; promote's `eval_multipl_e.n`; the teacher's
    `teacher.engine`, `teacher.engine_options`, so a new teacher.source reruns only
    prepare_teacher): such a `section.key` counts as a listing of its section. Which keys of a
    section a core reads is not in its signature, so that finer choice is checked by review (and,
    for the teacher, by test_a_stage_that_talks_to_the_teacher_depends_on_it above)."""
    entries = stage.get("params", [])
    assert all(isinstance(e, str) for e in entries), "params from another file than params.yaml"
    return {e.split(".")[0] for e in entries}


def test_cores_below_name_stages_and_functions_that_exist():
    import importlib

    for name, refs in CORES_BELOW.items():
        assert name in _stages(), name
        for ref in refs:
            mod, attr = ref.split(":")
            assert callable(getattr(importlib.import_module(mod), attr, None)), ref


@pytest.mark.parametrize("name", sorted(_stages()))
def test_stage_params_list_every_section_its_core_takes(name):
    stage = _stages()[name]
    listed = listed_sections(stage)
    for func in _core_functions(name, stage):
        missing = sorted(sections_taken(func) - listed)
        assert not missing, (f"dvc.yaml stage {name} does not list params {missing}, which "
                             f"{func.__module__}.{func.__qualname__} takes: add them to its params:")


def test_sections_taken_reads_the_signature():
    from safurai_csharp.stages import evolve, filter as filter_stage, generate, promote

    assert sections_taken(generate.generate) == {"generate", "teacher", "sandbox"}
    assert sections_taken(filter_stage.filter_records) == {"filter", "teacher", "sandbox"}
    assert sections_taken(evolve.evolve_round) == {"evolve", "teacher", "filter", "generate", "sandbox"}
    assert sections_taken(promote.eval_setup) == {"promote", "eval_multipl_e", "benchmark"}
    assert listed_sections(_stages()["promote"]) >= {"promote", "merge", "eval_multipl_e", "benchmark"}

    from safurai_csharp.config import Params

    def whole(params) -> None: ...

    whole.__annotations__ = {"params": Params, "return": None}
    with pytest.raises(AssertionError, match="takes the whole Params"):
        sections_taken(whole)
