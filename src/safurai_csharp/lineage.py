"""From a registered model version back to every MLflow run that made it, and on to its scores.

Every stage run tags the sha256 of what it read (`lineage.inputs`) and of what it wrote
(`lineage.outputs`, tracking.stage_run). A run's input is linked to the latest finished run
whose outputs hold that digest: the link is by content, so it survives `dvc exp run`, reruns
in another experiment, or a checkout on another machine that logs to the same server.

    safurai-csharp lineage                      # the champion of merge.registered_model
    safurai-csharp lineage --alias candidate --json

From the version: the merge run that logged it (its `run_id`) → the adapter's sft_qlora run →
the sft_data run → filter and evolve@k runs → generate → prepare_teacher → prepare_base, and
benchmark; forward: the eval runs whose input model is the version's `model.sha256` and the
runs (promote, report) that consumed those scores.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

_HEX = re.compile(r"[0-9a-f]{64}")
_MAX_DEPTH = 32


@dataclass
class RunNode:
    run_id: str
    stage: str
    experiment_id: str
    status: str
    via: str | None = None                 # the input of the consumer this run produced
    metrics: dict[str, float] = field(default_factory=dict)
    inputs: list[RunNode] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)   # inputs with no producing run on record
    used_by: list[RunNode] = field(default_factory=list)  # runs that read this run's outputs


def experiment_ids(client: Any) -> list[str]:
    return [e.experiment_id for e in client.search_experiments()]


def _search(client: Any, experiment_ids: list[str], where: str, limit: int) -> list[Any]:
    return client.search_runs(experiment_ids, filter_string=f"{where} AND attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"], max_results=limit)


def _checked(digest: str) -> str:
    # Digests go into a filter string: only hex digits may reach it.
    if not _HEX.fullmatch(digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return digest


def producer(client: Any, experiment_ids: list[str], digest: str) -> Any | None:
    """The latest finished run whose outputs include `digest`."""
    _checked(digest)
    runs = _search(client, experiment_ids, f"tags.`lineage.outputs` LIKE '%{digest}%'", 1)
    return runs[0] if runs else None


def consumers(client: Any, experiment_ids: list[str], digest: str, limit: int = 50) -> list[Any]:
    """Finished runs that read `digest`, latest first."""
    _checked(digest)
    return _search(client, experiment_ids, f"tags.`lineage.inputs` LIKE '%{digest}%'", limit)


# DVC's side of the lineage: what dvc.lock says about the stage that wrote a path (merge tags
# the registered model with it).
def dvc_lock_tags(adapter_dir: str | Path, lock: Path = Path("dvc.lock")) -> dict[str, str]:
    """What DVC recorded about the stage that produced the adapter: its name, the adapter's
    md5 and the md5 of its data dependencies (the training data's DVC hash)."""
    import yaml

    if not lock.is_file():
        return {}
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages") or {}
    for name, stage in stages.items():
        outs = {Path(o.get("path", "")): o for o in stage.get("outs") or []}
        if Path(adapter_dir) in outs:
            tags = {"dvc.adapter_stage": name, "dvc.adapter.md5": str(outs[Path(adapter_dir)].get("md5"))}
            for dep in stage.get("deps") or []:
                if dep.get("md5") and not dep["path"].startswith("src"):
                    tags[f"dvc.dep.{dep['path']}.md5"] = str(dep["md5"])
            return tags
    return {}


def _node(run: Any, via: str | None = None) -> RunNode:
    return RunNode(run_id=run.info.run_id, stage=run.data.tags.get("dvc.stage", run.info.run_name or "?"),
                   experiment_id=run.info.experiment_id, status=run.info.status, via=via,
                   metrics={k: v for k, v in run.data.metrics.items() if not k.startswith("system/")})


def trace(client: Any, run: Any, ids: list[str] | None = None, *, via: str | None = None,
          _path: frozenset[str] = frozenset(), _producers: dict[str, Any] | None = None) -> RunNode:
    """`run` and, recursively, the runs that produced each of its inputs (searched in the
    experiments `ids`; default: all)."""
    ids = ids if ids is not None else experiment_ids(client)
    # The pipeline is a DAG (filter feeds sft_data and evolve@1): one search per digest.
    producers = {} if _producers is None else _producers
    node = _node(run, via)
    path = _path | {run.info.run_id}
    for key, digest in sorted(run.data.tags.items()):
        if not (key.startswith("input.") and key.endswith(".sha256")):
            continue
        name = key[len("input."):-len(".sha256")]
        if digest not in producers:
            producers[digest] = producer(client, ids, digest)
        parent = producers[digest]
        # A cycle cannot come from a DAG; a run that read and rewrote one file would make one.
        if parent is None or parent.info.run_id in path or len(path) >= _MAX_DEPTH:
            node.unresolved.append(name)
            continue
        node.inputs.append(trace(client, parent, ids, via=name, _path=path, _producers=producers))
    return node


def version_lineage(client: Any, name: str, *, version: str | None = None, alias: str | None = None) -> dict[str, Any]:
    """What made version `version` (or `alias`) of registered model `name`, and what scored it."""
    from .registry import CHAMPION, RegistryError, version_by_alias

    if version is not None:
        mv = client.get_model_version(name, str(version))
    else:
        alias = alias or CHAMPION
        mv = version_by_alias(client, name, alias)
        if mv is None:
            raise RegistryError(f"registered model {name!r} has no version with alias {alias!r}")
    ids = experiment_ids(client)
    made_by = trace(client, client.get_run(mv.run_id), ids) if mv.run_id else None
    scored_by = []
    model_sha = mv.tags.get("model.sha256")
    if model_sha and _HEX.fullmatch(model_sha):
        evals = _search(client, ids, f"tags.`input.model.sha256` = '{model_sha}'", 50)
        for ev in evals:
            node = _node(ev, via="model")
            used_by: dict[str, RunNode] = {}
            for digest in (ev.data.tags.get("lineage.outputs") or "").split():
                for c in consumers(client, ids, digest):
                    used_by.setdefault(c.info.run_id, _node(c))
            node.used_by = list(used_by.values())
            scored_by.append(node)
    return {"registered_model": name, "version": str(mv.version), "aliases": list(getattr(mv, "aliases", []) or []),
            "model_sha256": model_sha, "made_by": None if made_by is None else asdict(made_by),
            "scored_by": [asdict(n) for n in scored_by]}


def _short(metrics: dict[str, float]) -> str:
    keys = [k for k in ("corrected.pass_at_1", "official.pass_at_1", "funnel.keep", "train_loss", "examples")
            if k in metrics]
    return ", ".join(f"{k}={metrics[k]:.4g}" for k in keys)


def format_lineage(lin: dict[str, Any]) -> str:
    lines = [f"{lin['registered_model']} v{lin['version']}"
             + (f" (aliases: {', '.join(lin['aliases'])})" if lin["aliases"] else "")
             + (f"  model.sha256 {lin['model_sha256'][:12]}" if lin["model_sha256"] else "")]

    shown: set[str] = set()

    def walk(node: dict[str, Any], depth: int, prefix: str = "") -> None:
        via = f"{node['via']} <- " if node["via"] else ""
        indent = "  " * depth
        if node["run_id"] in shown:   # a DAG, not a tree: each run's inputs are listed once
            lines.append(f"{indent}{prefix}{via}{node['stage']}  run {node['run_id']} (inputs above)")
            return
        shown.add(node["run_id"])
        extra = _short(node["metrics"])
        lines.append(f"{indent}{prefix}{via}{node['stage']}  run {node['run_id']} "
                     f"(experiment {node['experiment_id']})" + (f"  [{extra}]" if extra else ""))
        for child in node["inputs"]:
            walk(child, depth + 1)
        for name in node["unresolved"]:
            lines.append(f"{indent}  {name} <- (no run on record produced it)")
        for child in node["used_by"]:
            walk(child, depth + 1, prefix="read by ")

    lines.append("made by:")
    if lin["made_by"]:
        walk(lin["made_by"], 1)
    else:
        lines.append("  (the version names no run)")
    lines.append("scored by:")
    for node in lin["scored_by"]:
        walk(node, 1)
    if not lin["scored_by"]:
        lines.append("  (no eval run has read this model yet)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from .config import load_params
    from .registry import client
    from .tracking import tracking_uri

    params = load_params(args.params)
    lin = version_lineage(client(tracking_uri(params.mlflow)), args.model or params.merge.registered_model,
                          version=args.version, alias=args.alias)
    print(json.dumps(lin, indent=2) if args.json else format_lineage(lin))
    return lin


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lineage", help="the MLflow runs that made a registered model version, and its scores")
    p.add_argument("--model", default=None, help="registered model name (default: merge.registered_model)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--version", default=None, help="a version number")
    which.add_argument("--alias", default=None, help="an alias (default: champion)")
    p.add_argument("--json", action="store_true", help="print the lineage as JSON")
    p.add_argument("--params", default="params.yaml")
    p.set_defaults(func=run)
