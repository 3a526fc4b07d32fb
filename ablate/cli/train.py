"""`ablate train`: train one network, with a progress bar, and print a summary table."""

from __future__ import annotations

import click

from ..config import TrainConfig
from ..engine import Trainer
from ..engine.stopping import stop_on_interrupt
from ..files import write_json_atomic
from .main import EXIT_TRIALS_FAILED
from .options import config_options, validated


@click.command()
@config_options()
@click.option("--checkpoint-dir", type=click.Path(file_okay=False), default=None,
              help="save a checkpoint every epoch here; a run started on it resumes")
@click.option("--json-out", type=click.Path(dir_okay=False), default=None, help="write every metric as JSON")
@click.option("--quiet", is_flag=True, help="no progress bar")
def train(checkpoint_dir, json_out, quiet, **settings):
    """Train one network and print a summary table. The first Ctrl-C stops at the end of
    the epoch (its checkpoint kept), a second at once. Exit code 1 when training ended
    otherwise than finished (it diverged)."""
    config = validated(TrainConfig, **settings)
    trainer = Trainer(config, checkpoint_dir=checkpoint_dir, progress=not quiet)
    with stop_on_interrupt(trainer.stop, lambda text: click.echo(f"\n{text}", err=True)):
        result = trainer.fit()
    click.echo(render_train_summary(result))
    if json_out:
        write_json_atomic(json_out, result)
    if result["status"] != "finished":
        click.echo(f"failed: {result['message']}", err=True)
        raise click.exceptions.Exit(EXIT_TRIALS_FAILED)


def _pct(value) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def _bytes(n) -> str:
    if n is None:
        return "—"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def render_train_summary(result: dict) -> str:
    config, final, best = result["config"], result["final"], result["best"]
    memory_kind = "GPU max allocated" if result["device"].startswith("cuda") else "held for backward"
    lines = [
        f"{config['model']} · {config['rule']} · {config['dataset']} · seed {config['seed']} · "
        f"{result['status']} after {result['epochs_completed']}/{config['epochs']} epochs on {result['device']}",
    ]
    if result["message"]:
        lines.append(result["message"])
    if final is None:
        return "\n".join(lines)
    best_header = f"best val (epoch {best['epoch']})" if best else "best val"
    rows = [
        ("", "final", best_header),
        ("validation acc", _pct(final["val_acc"]), _pct(best and best["val_acc"])),
        ("test acc", _pct(final["test_acc"]), _pct(best and best["test_acc"])),
        ("train acc", _pct(final["train_acc"]), ""),
        ("train loss", f"{final['train_loss']:.4f}", ""),
        ("time / epoch", f"{result['time_per_epoch_s']:.2f} s", ""),
        ("examples / s", f"{final['examples_per_s']:.0f}", ""),
        (f"peak memory ({memory_kind})", _bytes(result["peak_memory_bytes"]), ""),
        ("peak RSS", _bytes(final["peak_rss_bytes"]), ""),
    ]
    width = max(len(r[0]) for r in rows)
    lines.append("")
    lines += [f"{a:<{width}}  {b:>10}  {c:>18}".rstrip() for a, b, c in rows]
    if final["aux_acc"]:
        lines.append("")
        lines.append("local layers' auxiliary accuracy (train, final epoch):")
        cells = [f"{i}:{100 * acc:.1f}%" for i, acc in enumerate(final["aux_acc"])]
        for start in range(0, len(cells), 8):
            lines.append("  " + "  ".join(cells[start:start + 8]))
    return "\n".join(lines)
