"""The `edgekit` command: an explicit table of subcommands, each in its own cmd_<verb>.py, imported on use
so that `edgekit --help` and `edgekit models` stay fast."""
from __future__ import annotations

import importlib
import sys

import click

from edgekit import __version__
from edgekit.errors import EdgekitError, ExitStatus

# verb -> (module, attribute, one-line help shown by `edgekit --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "models": ("edgekit.cli.cmd_models", "models", "List the registered SAM variants."),
    "predict": ("edgekit.cli.cmd_predict", "predict", "Segment an image with a variant (masks as .npz, optional overlay)."),
    "export": ("edgekit.cli.cmd_export", "export", "Export a variant to validated ONNX with layer maps."),
    "quantize": ("edgekit.cli.cmd_quantize", "quantize", "Static INT8 of exported artifacts, with its accuracy cost."),
    "eval": ("edgekit.cli.cmd_eval", "eval_", "mIoU against ground-truth masks (SA-1B layout), for the model or any artifact."),
    "deploy": ("edgekit.cli.cmd_deploy", "deploy", "The main job: export, quantize, profile on a target, report."),
    "bundle": ("edgekit.cli.cmd_bundle", "bundle", "Models + manifest + reference consumer for an Android, iOS or ONNX app."),
    "targets": ("edgekit.cli.cmd_targets", "targets", "List the device profiles (built-in and ~/.config/edgekit/targets)."),
    "doctor": ("edgekit.cli.cmd_doctor", "doctor", "Check a device: runtimes, Python, disk, thermal state, tools."),
    "parse": ("edgekit.cli.cmd_parse", "parse", "Parse a device tool's raw output (trtexec, benchmark_model, ...)."),
    "report": ("edgekit.cli.cmd_report", "report", "Render or compare deploy reports."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_) for name, (_, _, help_) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="edgekit")
def cli() -> None:
    """edgekit: official Segment-Anything variants, from checkpoint to edge device, measured per layer.

    \b
    Examples:
      edgekit models
      edgekit predict --model mobilesam --checkpoint mobile_sam.pt --image dog.jpg --point 400,300 --out dog.npz
    """


def _show_warning(message: Warning | str, category: type, filename: str, lineno: int, file=None, line=None) -> None:
    """Warnings as one line for the user, not as a source location inside click."""
    click.echo(f"edgekit: warning: {message}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point: EdgekitError -> one message and its exit code; no traceback for anything expected."""
    import warnings

    warnings.showwarning = _show_warning
    try:
        # Non-standalone mode returns the exit code of --help / --version (click.exceptions.Exit) instead of exiting.
        rc = cli.main(args=argv, prog_name="edgekit", standalone_mode=False)
    except EdgekitError as exc:
        click.echo(f"edgekit: error: {exc.render()}", err=True)
        sys.exit(int(exc.status))
    except click.exceptions.Abort:
        click.echo("edgekit: interrupted", err=True)
        sys.exit(int(ExitStatus.INTERRUPTED))
    except KeyboardInterrupt:
        click.echo("edgekit: interrupted", err=True)
        sys.exit(int(ExitStatus.INTERRUPTED))
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(rc if isinstance(rc, int) else 0)
