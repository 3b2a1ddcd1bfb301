import copy
from pathlib import Path

import pytest
import yaml

from safurai_csharp.config import ParamsError, load_params, parse_params

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def raw():
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def errors_for(raw) -> str:
    with pytest.raises(ParamsError) as exc:
        parse_params(raw)
    return str(exc.value)


def test_shipped_params_validate():
    params = load_params(ROOT / "params.yaml")
    assert params.base_model.source == "qwen2.5-coder-0.5b-instruct"
    assert "base" in params.eval_multipl_e.targets


@pytest.mark.parametrize("profile", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_profile_validates(profile):
    load_params(profile)


def test_unknown_key_names_key_and_allowed_keys(raw):
    raw["eval_multipl_e"]["tempreature"] = 0.2
    msg = errors_for(raw)
    assert "eval_multipl_e.tempreature: unknown key" in msg
    assert "temperature" in msg and "max_new_tokens" in msg  # the allowed keys are listed


def test_unknown_nested_key(raw):
    raw["eval_multipl_e"]["engine_options"]["vllm"]["tp"] = 2
    msg = errors_for(raw)
    assert "eval_multipl_e.engine_options.vllm.tp: unknown key" in msg
    assert "tensor_parallel_size" in msg


def test_an_engine_option_is_never_silently_dropped(raw):
    """`dvc exp run -S teacher.engine_options.batch_size=64` with engine vllm: each engine has
    its own options block, so the sweep is a params error that says where the key belongs, not
    a run that ignores it."""
    assert raw["teacher"]["engine"] == "vllm"
    raw["teacher"]["engine_options"]["batch_size"] = 64
    msg = errors_for(raw)
    assert ("teacher.engine_options.batch_size: unknown key; it is an option of engine hf: "
            "write teacher.engine_options.hf.batch_size") in msg
    del raw["teacher"]["engine_options"]["batch_size"]
    raw["teacher"]["engine_options"]["vllm"]["batch_size"] = 64
    msg = errors_for(raw)
    assert "teacher.engine_options.vllm.batch_size: unknown key; engine vllm does not take it" in msg


def test_the_engine_gets_its_own_options_only(raw):
    from safurai_csharp.engines import ENGINES, _accepted

    params = parse_params(raw)
    for engine in ENGINES:
        assert set(params.teacher.engine_options.of(engine)) == _accepted(ENGINES[engine]) - {"seed"}, engine
    raw["teacher"]["engine"] = "hf"  # switching engines needs no other edit: every block stays in the file
    assert parse_params(raw).teacher.engine_options.of("hf") == {"dtype": "bfloat16", "batch_size": 16}


def test_wrong_type_names_key_and_value(raw):
    raw["eval_multipl_e"]["n"] = "five"
    msg = errors_for(raw)
    assert "eval_multipl_e.n" in msg and "'five'" in msg


def test_strict_types_do_not_coerce(raw):
    raw["sandbox"]["batch"] = "yes"
    assert "sandbox.batch" in errors_for(raw)


def test_bad_choice_lists_allowed_values(raw):
    raw["eval_multipl_e"]["engine"] = "llamacpp"
    msg = errors_for(raw)
    assert "eval_multipl_e.engine" in msg and "'vllm'" in msg and "'hf'" in msg


def test_missing_section(raw):
    del raw["sandbox"]
    assert "sandbox: required key is missing" in errors_for(raw)


def test_cross_field_greedy_with_many_samples(raw):
    raw["eval_multipl_e"]["n"] = 5
    raw["eval_multipl_e"]["temperature"] = 0.0
    assert "greedy" in errors_for(raw)


def test_cross_field_official_needs_path(raw):
    raw["benchmark"]["source"] = "official"
    raw["benchmark"]["path"] = None
    assert "source 'official' needs path" in errors_for(raw)


def test_cross_field_task_attempts_need_the_decomposed_recipe(raw):
    raw["generate"]["task_attempts"] = 2
    raw["generate"]["recipe"] = "answer"
    assert "task_attempts applies to the decomposed recipe only" in errors_for(raw)


def test_cross_field_output_agreement_needs_the_decomposed_recipe_and_enough_bodies(raw):
    raw["generate"].update(recipe="answer", task_attempts=1, output_agreement=2)
    assert "output_agreement applies to the decomposed recipe only" in errors_for(raw)
    raw["generate"].update(recipe="decomposed", solutions_per_task=2, output_agreement=4)
    assert "asks more bodies to agree than a task has" in errors_for(raw)
    raw["generate"]["output_agreement"] = 3
    assert parse_params(raw).generate.output_agreement == 3


def test_range_check(raw):
    raw["sandbox"]["workers"] = 0
    assert "sandbox.workers" in errors_for(raw)


def test_not_a_mapping(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("- just\n- a list\n")
    with pytest.raises(ParamsError, match="expected a mapping"):
        load_params(p)


def test_cli_reports_params_errors(tmp_path, raw, capsys):
    from safurai_csharp.cli import main

    bad = copy.deepcopy(raw)
    bad["benchmark"]["limit"] = -3
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(bad))
    assert main(["check-params", "--params", str(p)]) == 2
    assert "benchmark.limit" in capsys.readouterr().err


def test_merge_and_promote_defaults(raw):
    params = parse_params(raw)
    # the embedded default: a 16-bit LoRA merged into the original weights
    assert params.merge.into == "original" and not params.sft_qlora.quantization.enabled
    assert params.promote.target in params.eval_multipl_e.targets
    assert params.eval_multipl_e.targets[params.promote.target].model_dir == params.merge.out_dir


def test_cross_field_dequantized_needs_a_4bit_training(raw):
    raw["sft_qlora"]["quantization"]["enabled"] = False
    raw["merge"]["into"] = "dequantized"
    msg = errors_for(raw)
    assert "merge.into dequantized rebuilds" in msg and "set merge.into: original" in msg
    raw["merge"]["into"] = "original"
    parse_params(raw)


def test_cross_field_merge_must_not_overwrite_its_inputs(raw):
    raw["merge"]["out_dir"] = raw["merge"]["adapter_dir"] + "/"
    assert "out_dir is the same directory as adapter_dir" in errors_for(raw)


def test_cross_field_merge_reads_the_adapter_after_dpo(raw):
    params = parse_params(raw)
    assert not params.dpo.enabled and params.merge.adapter_dir == params.dpo.out_dir  # off by default
    raw["merge"]["adapter_dir"] = raw["sft_qlora"]["out_dir"]
    parse_params(raw)  # off: merge may skip it (or read an adapter trained elsewhere)
    raw["dpo"]["enabled"] = True
    assert "dpo.enabled trains models/adapter_dpo, but merge.adapter_dir is models/adapter" in errors_for(raw)
    raw["merge"]["adapter_dir"] = raw["dpo"]["out_dir"] = raw["sft_qlora"]["out_dir"]
    assert "dpo.out_dir is sft_qlora.out_dir" in errors_for(raw)


def test_dpo_ranges(raw):
    raw["dpo"]["max_steps"] = 0
    assert "max_steps 0 would train nothing" in errors_for(raw)
    raw["dpo"].update(max_steps=-1, loss_type="kto", beta=0)
    msg = errors_for(raw)
    assert "dpo.loss_type" in msg and "dpo.beta" in msg


def test_cross_field_promote_reads_the_merged_model(raw):
    raw["promote"]["target"] = "nope"
    assert "promote.target 'nope' is not a key of eval_multipl_e.targets" in errors_for(raw)
    raw["promote"]["target"] = "base"
    assert "promote would judge one model by another's score" in errors_for(raw)


def test_merge_and_promote_ranges(raw):
    raw["merge"]["fidelity_prompts"] = 13
    raw["promote"]["margin"] = -0.1
    raw["merge"]["dtype"] = "int8"
    msg = errors_for(raw)
    assert "merge.fidelity_prompts" in msg and "promote.margin" in msg and "merge.dtype" in msg


def test_cross_field_report_compares_two_eval_targets(raw):
    assert (raw["report"]["baseline"], raw["report"]["candidate"]) == ("base", "merged")
    raw["report"]["candidate"] = "nope"
    msg = errors_for(raw)
    assert "report.candidate 'nope' is not a key of eval_multipl_e.targets (base, merged)" in msg
    raw["report"]["candidate"] = "base"
    assert "report.baseline and report.candidate are both 'base'" in errors_for(raw)
    raw["eval_multipl_e"]["targets"]["nope"] = {"model_dir": "models/other"}
    raw["report"].update(baseline="nope", candidate="merged")
    assert parse_params(raw).report.baseline == "nope"


def test_report_knobs(raw):
    raw["report"].update(per_problem_plot="metrics/eval/per_problem.json", bootstrap_samples=10, permutations="many")
    msg = errors_for(raw)
    assert "report.bootstrap_samples" in msg and "report.permutations" in msg
    raw["report"].update(bootstrap_samples=2000, permutations=10000)
    assert "per_problem_plot must be a .csv file" in errors_for(raw)


@pytest.mark.parametrize("section", ["eval_multipl_e", "eval_dev"])
def test_eval_result_paths_are_the_layout_dvc_yaml_declares(raw, section):
    """One layout for where an eval stage writes and report/promote read (config.SamplingParams
    results_path / metrics_path), the same dvc.yaml declares as the stage's outs and metrics."""
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][section]["do"]
    assert stage["outs"] == [f"${{{section}.out_dir}}/${{key}}/results.jsonl"]
    assert list(stage["metrics"][0]) == [f"${{{section}.metrics_dir}}/${{key}}.json"]
    cfg = getattr(parse_params(raw), section)
    assert cfg.results_path("merged") == Path(cfg.out_dir) / "merged" / "results.jsonl"
    assert cfg.metrics_path("merged") == Path(cfg.metrics_dir) / "merged.json"


def test_eval_dev_source_picks_the_problems_file_and_devbench_is_corrected_only(raw):
    params = parse_params(raw)
    assert params.eval_dev.source == "devbench"
    assert params.eval_dev.problems_path(params.benchmark, params.split.out_dir) == Path(params.benchmark.devbench_out)
    # every file a model is scored on is blocked from the training data
    assert params.benchmark.evaluation_files() == [params.benchmark.out, params.benchmark.devbench_out]
    raw["eval_dev"]["modes"] = ["official", "corrected"]
    assert "DevBench is scored in the corrected mode only" in errors_for(raw)
    raw["eval_dev"].update(source="split")
    params = parse_params(raw)
    assert params.eval_dev.problems_path(params.benchmark, params.split.out_dir) == Path(params.split.out_dir) / "dev.jsonl"


def test_eval_dev_tiers_are_devbenchs_and_only_for_devbench(raw):
    """eval_dev.devbench_tiers names benchmark/devbench's TIERS (one list in the schema, one in the
    data's home: this keeps them equal), only with source devbench, and never none at all."""
    import typing

    from safurai_csharp.benchmark.devbench import TIERS
    from safurai_csharp.config.runtime import EvalDevParams

    annotation = EvalDevParams.model_fields["devbench_tiers"].annotation
    (items,) = [a for a in typing.get_args(annotation) if a is not type(None)]
    assert set(typing.get_args(typing.get_args(items)[0])) == set(TIERS)
    raw["eval_dev"].update(devbench_tiers=["basics", "strings"])
    assert parse_params(raw).eval_dev.devbench_tiers == ["basics", "strings"]
    raw["eval_dev"].update(devbench_tiers=["hard"])
    assert "devbench_tiers" in errors_for(raw)
    raw["eval_dev"].update(devbench_tiers=[])
    assert "devbench_tiers is empty" in errors_for(raw)
    raw["eval_dev"].update(devbench_tiers=["basics"], source="split", modes=["official"])
    assert "devbench_tiers picks DevBench problems, but source is split" in errors_for(raw)
