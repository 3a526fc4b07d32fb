"""The dry run: what `ablate run --dry-run` prints about a study before anything trains."""

from __future__ import annotations

from ..config import TrainConfig
from ..errors import UserInputError
from ..rules import RULES
from ..spec import StudySpec, plan_of
from ..spec.wording import show
from ..tracking import resolve_tracking_uri
from ..urls import mask_url
from .estimate import estimate
from .storage import resolve_storage


def render_dry_run(spec: StudySpec, storage: str | None = None, tracking_uri: str | None = None,
                   jobs: int = 1, cost: bool = True) -> str:
    """Every cell with its factors, seeds, id and auxiliary plan, where results go
    (`storage` and `tracking_uri` as given on the command line, else the study file's,
    else the defaults beside the study; passwords masked), and, with `cost`, the study's
    training FLOPs and the time they take here (a few timed training steps)."""
    lines = [f"study {spec.name} ({spec.path})"]
    if cost:
        lines.append(_cost(spec))
    storage = resolve_storage(spec, storage, jobs)
    tracking = resolve_tracking_uri(spec, tracking_uri)
    lines.append(f"  optuna storage: {mask_url(storage)}")
    lines.append(f"  mlflow: {mask_url(tracking)}, experiment {spec.experiment!r}")
    if spec.fixed:
        lines.append("  fixed: " + " ".join(f"{k}={_plain(v)}" for k, v in spec.fixed.items()))
    if spec.search is not None:
        return "\n".join(lines + _render_search(spec))
    cells = spec.cells()
    aliases = spec.aliases()
    shared = (f" ({len(spec.layout)} listed; {_count(len(aliases), 'alias', 'es')} of them train the same "
              "networks as another cell and share its trials)" if aliases else "")
    lines.append(f"  {_count(len(cells), 'cell')} × {_count(len(spec.seeds), 'seed')} = "
                 f"{_count(len(spec.trials), 'trial')}; "
                 f"seeds {', '.join(map(str, spec.seeds))}{shared}")
    if spec.reference:
        lines.append("  reference: " + " ".join(f"{k}={_plain(v)}" for k, v in spec.reference.items()))
    lines += _render_analysis(spec)
    configs = {trial.cell_id: trial.config for trial in spec.trials}
    labels = {entry.cell_id: _described(entry.factors) for entry in spec.layout}
    for entry in spec.layout:
        note = "  (added: the CKA reference)" if entry.cell_id in spec.added_cells else ""
        lines.append(f"cell {entry.cell_id}  {labels[entry.cell_id]}{note}")
        if entry.alias:
            lines.append(f"  same network as {labels[entry.trained_as]} (cell {entry.trained_as}): trained once")
        else:
            lines.append(f"  plan: {describe_plan(configs[entry.cell_id])}")
    return "\n".join(lines)


def _cost(spec: StudySpec) -> str:
    try:
        return estimate(spec).render()
    except (UserInputError, RuntimeError) as err:  # e.g. a device this machine lacks: the cells are still listed
        return f"  cost: {estimate(spec, calibrate=False).render().removeprefix('  cost: ')} (not timed: {str(err)})"


def _render_analysis(spec: StudySpec) -> list[str]:
    analysis = spec.analysis
    if analysis is None:
        return []
    lines = []
    if analysis.probes is not None:
        p = analysis.probes
        lines.append(f"  analysis: linear probes on every layer ({p.reduction}, {p.train_examples} training examples)")
    if analysis.cka is not None:
        c = analysis.cka
        reference = " ".join(f"{k}={_plain(v)}" for k, v in c.reference.items())
        lines.append(f"  analysis: linear CKA to the {reference} trial of the same seed ({c.estimator}, "
                     f"first {c.samples} test examples, {c.reduction})")
    return lines


def describe_plan(config: TrainConfig) -> str:
    """One line: layers, local layers and their auxiliary depths, the end-to-end head group."""
    plan = plan_of(config)
    rule = RULES[config.rule]
    if not rule.local:
        return f"{config.model}, {plan.num_layers} layers, {rule.describe_plan(plan)} ({rule.name})"
    heads = plan.head_layers
    head = f"layers {heads[0]}-{heads[-1]} end-to-end" if len(heads) > 1 else f"layer {heads[0]} end-to-end"
    return f"{config.model}, {plan.num_layers} layers: {rule.describe_plan(plan)}; {head}"


def _render_search(spec: StudySpec) -> list[str]:
    search = spec.search
    objectives = ", ".join(f"{metric} ({direction})" for metric, direction in search.objectives)
    lines = [f"  search: {search.sampler} sampler, {search.n_trials} trials, seed {spec.seeds[0]}, "
             f"pruner {search.pruner or 'none'}",
             f"  objectives: {objectives}"]
    for key, param in search.params.items():
        if param["kind"] == "categorical":
            lines.append(f"  {key} in {_plain(param['choices'])}")
        else:
            extras = [e for e, on in (("log", param["log"]), (f"step {param['step']}", param["step"])) if on]
            note = f" ({', '.join(extras)})" if extras else ""
            lines.append(f"  {key} in [{param['low']}, {param['high']}]{note}")
    base = spec.trial({}, spec.seeds[0])
    lines.append(f"  plan of the fixed settings: {describe_plan(base.config)}")
    return lines


def _count(n: int, noun: str, plural: str = "s") -> str:
    return f"{n} {noun}{'' if n == 1 else plural}"


def _described(factors: dict) -> str:
    return " ".join(f"{k}={_plain(v)}" for k, v in factors.items()) or "(settings only)"


def _plain(value) -> str:
    """A value for a listing: like show, but text unquoted."""
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1:
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_plain(v) for v in value) + "]"
    return value if isinstance(value, str) else show(value)
