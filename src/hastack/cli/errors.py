"""The CLI's one error boundary: every failure becomes one line per problem on stderr, never a traceback."""

from __future__ import annotations

import click

from hastack.lab.system import LabError
from hastack.model import InventoryError

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


class CliError(Exception):
    """A failure the operator can act on; the message is the whole story."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def run_guarded(command: click.Command, argv: list[str] | None = None) -> int:
    """Run the click command, turning every expected failure into one-line messages and an exit status."""
    prog = "hastack"
    try:
        # Without standalone mode click returns the exit code of --help / ctx.exit() instead of exiting.
        result = command.main(args=argv, prog_name=prog, standalone_mode=False)
    except InventoryError as e:
        for line in e.lines:
            click.echo(line, err=True)
        return EXIT_BAD_INPUT
    except click.exceptions.Exit as e:
        return int(e.exit_code)
    except click.exceptions.Abort:
        click.echo(f"{prog}: aborted", err=True)
        return EXIT_FAILED
    except click.UsageError as e:
        where = e.ctx.command_path if e.ctx else prog
        click.echo(f"{where}: error: {e.format_message().rstrip('.')} (see `{where} --help`)", err=True)
        return EXIT_BAD_INPUT
    except click.ClickException as e:
        click.echo(f"{prog}: error: {e.format_message()}", err=True)
        return e.exit_code
    except LabError as e:
        click.echo(f"{prog} lab: error: {e}", err=True)
        return EXIT_FAILED
    except CliError as e:
        click.echo(f"{prog}: error: {e}", err=True)
        return e.exit_code
    except KeyboardInterrupt:
        click.echo(f"{prog}: interrupted", err=True)
        return 130
    return result if isinstance(result, int) else 0
