"""Stage promote: move the registry alias `champion` to the candidate when it scores better.

After eval_multipl_e@<promote.target> (the merged model). The candidate is the version alias
`candidate` points at (stage merge sets it); its model.sha256 tag must match the evaluated
directory, so a score is never pinned on another model. It becomes champion when

    candidate pass@1 > champion pass@1 + promote.margin      (strictly; ties keep the champion)

or when there is no champion yet. The champion's score is the `promote.score` tag promote
wrote on it when it was judged. Scores of different evaluation setups (benchmark subset, n,
sampling) are not compared: the champion stays, and the reason says why.

Written: metrics/promotion.json (decision, both scores) and tags on the candidate
(promote.score, promote.metric, promote.eval_setup, promote.decision, promote.reason,
promote.champion_before, promote.champion_score_before) and, when replaced, on the old
champion (promote.superseded_by). The aliases live in the MLflow store, outside DVC.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from ..config import BenchmarkParams, EvalParams, PromoteParams, load_params
from ..tracking import log_metrics, stage_run


def eval_setup(cfg: PromoteParams, ev: EvalParams, bench: BenchmarkParams,
               metrics: dict[str, Any]) -> dict[str, Any]:
    """What must match for two pass@1 numbers to be comparable."""
    return {"metric": cfg.metric, "problems": metrics.get("problems"), "n": ev.n,
            "temperature": ev.temperature, "top_p": ev.top_p, "max_new_tokens": ev.max_new_tokens,
            "benchmark": {"source": bench.source, "path": bench.path, "limit": bench.limit, "problems": bench.problems}}


def decide(candidate: float, champion: float | None, margin: float, same_setup: bool = True) -> tuple[bool, str]:
    """Pure: (promote?, reason)."""
    if champion is None:
        return True, "no champion yet: the first model becomes champion"
    if not same_setup:
        return False, "the champion was scored on a different evaluation setup: scores are not comparable"
    if candidate > champion + margin:
        return True, f"{candidate:.4f} beats the champion's {champion:.4f} by more than the margin {margin}"
    return False, f"{candidate:.4f} does not beat the champion's {champion:.4f} by more than the margin {margin}"


def promote(client: Any, name: str, score: float, setup: dict[str, Any], margin: float,
            model_sha256: str | None) -> dict[str, Any]:
    """Judge the `candidate` version against the `champion`; move the alias and tag both."""
    from .. import registry

    candidate = registry.version_by_alias(client, name, registry.CANDIDATE)
    if candidate is None:
        raise registry.RegistryError(f"registered model {name!r} has no version with alias "
                                     f"{registry.CANDIDATE!r}: run `safurai-csharp merge` (merge.registry: true) first")
    registered_sha = candidate.tags.get("model.sha256")
    if model_sha256 is not None and registered_sha != model_sha256:
        raise registry.RegistryError(
            f"the evaluated model directory (sha256 {model_sha256[:12]}) is not the registered candidate "
            f"{name} v{candidate.version} (sha256 {(registered_sha or 'unknown')[:12]}): rerun merge and the eval")
    champion = registry.version_by_alias(client, name, registry.CHAMPION)
    champion_score, same_setup = None, True
    if champion is not None and str(champion.version) == str(candidate.version):
        promoted, reason = False, "the candidate is already the champion"
        champion_score = float(champion.tags.get("promote.score", score))
    elif champion is not None:
        if "promote.score" not in champion.tags:
            promoted, reason = False, (f"champion v{champion.version} has no promote.score tag (set by hand?): "
                                       f"set its score tag or move the alias by hand")
        else:
            champion_score = float(champion.tags["promote.score"])
            same_setup = json.loads(champion.tags.get("promote.eval_setup", "null")) == setup
            promoted, reason = decide(score, champion_score, margin, same_setup)
    else:
        promoted, reason = decide(score, None, margin)
    decision = {
        "registered_model": name, "promoted": promoted, "decision": "promoted" if promoted else "kept",
        "reason": reason, "metric": setup["metric"], "margin": margin, "comparable": same_setup,
        "candidate": {"version": int(candidate.version), "score": score},
        "champion_before": None if champion is None else {"version": int(champion.version), "score": champion_score},
        "champion_after": int(candidate.version) if promoted else (None if champion is None else int(champion.version)),
        "eval_setup": setup,
    }
    registry.set_tags(client, name, candidate.version, {
        "promote.score": repr(score), "promote.metric": setup["metric"], "promote.eval_setup": setup,
        "promote.decision": decision["decision"], "promote.reason": reason,
        "promote.champion_before": "none" if champion is None else champion.version,
        "promote.champion_score_before": "none" if champion_score is None else repr(champion_score),
        "promote.decided_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    if promoted:
        registry.set_alias(client, name, registry.CHAMPION, candidate.version)
        if champion is not None:
            registry.set_tags(client, name, champion.version, {"promote.superseded_by": candidate.version})
    return decision


def run(params_path: str = "params.yaml") -> dict[str, Any]:
    from .. import lineage, registry
    from ..hashing import path_digest
    from ..jsonl import write_json
    from ..model_card import scores_section, with_scores
    from ..tracking import tracking_uri

    params = load_params(params_path)
    cfg = params.promote
    name = params.merge.registered_model
    eval_file = params.eval_multipl_e.metrics_path(cfg.target)
    if not eval_file.is_file():
        raise FileNotFoundError(f"{eval_file}: run `safurai-csharp eval-multipl-e --target {cfg.target}` first")
    eval_metrics = json.loads(eval_file.read_text())
    if cfg.metric not in eval_metrics:
        raise registry.RegistryError(f"{eval_file} has no {cfg.metric!r} scores: add it to eval_multipl_e.modes")
    score = float(eval_metrics[cfg.metric]["pass@1"])
    model_dir = Path(params.eval_multipl_e.targets[cfg.target].model_dir)
    sha = path_digest(model_dir) if model_dir.exists() else None
    logged = {"promote": cfg.model_dump(), "registered_model": name}
    dev_file = params.eval_dev.metrics_path(cfg.target)
    with stage_run(params.mlflow, "promote", params=logged, inputs={"eval_metrics": eval_file, "dev_metrics": dev_file},
                   outputs={"promotion": cfg.metrics}) as mlflow:
        c = registry.client(tracking_uri(params.mlflow))
        setup = eval_setup(cfg, params.eval_multipl_e, params.benchmark, eval_metrics)
        decision = promote(c, name, score, setup, cfg.margin, sha)
        # Direct links for the MLflow UI (lineage.py finds the same runs by content hash).
        scored = lineage.producer(c, lineage.experiment_ids(c), path_digest(eval_file))
        registry.set_tags(c, name, decision["candidate"]["version"], {
            "lineage.promote_run_id": mlflow.active_run().info.run_id,
            **({"lineage.eval_run_id": scored.info.run_id} if scored else {})})
        # The registry page says what the version scored, above its model card (merge wrote it
        # before any eval ran).
        version = decision["candidate"]["version"]
        dev = json.loads(dev_file.read_text()) if dev_file.is_file() else None
        registry.describe(c, name, version, with_scores(registry.description(c, name, version),
                                                        scores_section(cfg.target, eval_metrics, dev, decision)))
        write_json(cfg.metrics, decision)
        before = decision["champion_before"]
        log_metrics(mlflow, {"candidate_score": score, "promoted": int(decision["promoted"]),
                             "candidate_version": decision["candidate"]["version"],
                             **({"champion_score_before": before["score"]} if before and before["score"] is not None else {})})
        mlflow.set_tags({"promote.decision": decision["decision"], "promote.reason": decision["reason"][:5000]})
        mlflow.log_artifact(cfg.metrics)
    print(f"promote: {name} v{decision['candidate']['version']} {decision['decision']}: {decision['reason']}")
    return decision


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("promote", help="move alias champion to the candidate if its pass@1 is better (stage promote)")
    p.add_argument("--params", default="params.yaml")
    p.set_defaults(func=lambda a: run(a.params))
