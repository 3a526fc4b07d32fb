"""The `ablate` command. Thin: parse, call the library, print. A user mistake is one
line on stderr and exit code 2, never a traceback.

Exit codes, the same for every command (the README's table):
    0    done: every trial the command was asked to train finished
    1    some trials ended failed; the summary names each and why (`ablate run --retry-failed`)
    2    a user mistake (bad input, a store that cannot be reached): one line, nothing created
    130  interrupted by Ctrl-C (SIGINT), 143 by SIGTERM: 128 + the signal's number, as a shell says

Each command's module is imported only when that command runs, so `ablate train` and
`ablate describe` need neither optuna nor mlflow (a GPU box may have only torch), and
`--help` answers without loading a framework it does not use.
"""

from __future__ import annotations

import importlib
import signal
import sys

import click

from ..errors import EXIT_USER_ERROR, UserInputError, one_line
from ..interrupts import terminate_as_interrupt
from ..outage import storage_fault

EXIT_DONE, EXIT_TRIALS_FAILED = 0, 1

# command -> (module of this package, attribute, what --help says of it: the first
# sentence of the command's own help, which a test keeps equal)
COMMANDS = {
    "describe": ("describe", "describe", "Show the auxiliary plan of a network"),
    "train": ("train", "train", "Train one network and print a summary table"),
    "validate": ("study", "validate", "Check a study file without training or creating anything"),
    "run": ("study", "run", "Train every cell × seed of a study that is not finished yet"),
    "status": ("study", "status", "Done / running / failed (with reasons) / pending trials of a study, and its analyses"),
    "report": ("report", "report", "Mean ± std over seeds per cell, comparisons with the reference cell, plots"),
    "analyze": ("analyze", "analyze", "Linear probes and CKA of finished runs (by MLflow run id, or --study and a cell)"),
}


class _LazyGroup(click.Group):
    """click's lazily loading group: a command's module is imported when it is asked for;
    the command list of --help comes from COMMANDS, so it imports none of them."""

    def list_commands(self, ctx) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute, _ = COMMANDS[name]
        return getattr(importlib.import_module(f"{__package__}.{module}"), attribute)

    def format_commands(self, ctx, formatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, summary) for name, (_, _, summary) in COMMANDS.items()])


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ablate")
def cli():
    """Ablation studies of supervised local learning (AugLocal and its baselines)."""


def main(argv=None) -> int:
    """Entry point: one-line errors with exit code 2 for every user mistake."""
    with terminate_as_interrupt():
        return _main(argv)


def _main(argv) -> int:
    try:
        # without standalone mode click returns what a command's Exit carries (a command
        # that returns normally gives None), and turns Ctrl-C into Abort
        code = cli.main(args=argv, prog_name="ablate", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort as exc:
        if exc.__cause__ is not None and not isinstance(exc.__cause__, KeyboardInterrupt):
            raise exc.__cause__ from None  # an EOFError nobody caught is a bug: keep its traceback
        signum = getattr(exc.__cause__, "signum", signal.SIGINT)
        click.echo(f"interrupted by {signal.Signals(signum).name}", err=True)
        return 128 + signum
    except click.ClickException as exc:
        click.echo(f"error: {one_line(exc.format_message())}", err=True)
        return EXIT_USER_ERROR
    except UserInputError as exc:
        click.echo(f"error: {one_line(str(exc))}", err=True)
        return EXIT_USER_ERROR
    except Exception as exc:
        fault = storage_fault(exc)  # a full disk or a read-only folder wherever it is met: no bug
        if fault is None:
            raise
        click.echo(f"error: {fault}; free space or make the folder writable, then run the command again", err=True)
        return EXIT_USER_ERROR
    return code if isinstance(code, int) else EXIT_DONE


if __name__ == "__main__":
    sys.exit(main())
