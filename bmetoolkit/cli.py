"""The ``bmetoolkit`` command line.

``main(argv)`` returns the exit code instead of exiting, so tests run commands in-process.

Declaring a command
-------------------
A command is one module in :mod:`bmetoolkit.commands`, named as the command (``analyze.py``
declares ``analyze``, ``batch.py`` ``batch`` ...); :func:`get_parser` finds every module
there by itself, so a new command needs no edit elsewhere. To run a command, :func:`main`
imports and registers that command's module alone (``bmetoolkit --help`` and an unknown
command get them all). The module defines two functions::

    from bmetoolkit.commands import EXIT_OK

    def register(commands):  # the argparse sub-parsers action
        parser = commands.add_parser("name", help="one line", description="a paragraph")
        parser.add_argument(...)
        parser.set_defaults(handler=run)

    def run(args: argparse.Namespace) -> int:
        from bmetoolkit.something_heavy import work  # heavy imports here, not at the top

        print(work(args.path))
        return EXIT_OK

Keep the module's top-level imports light: ``bmetoolkit --help`` imports every command module.
``run`` calls the Python API and prints; it does not print errors or choose their exit codes.
A command that takes analysis parameters declares ``--params`` with
:data:`bmetoolkit.commands.analyze.PARAMS_HELP` and reads it with
:meth:`bmetoolkit.params.Parameters.from_argument` (a file, a report or inline JSON).

Exit codes (decided here, in :func:`main`)
------------------------------------------
- **0** (``EXIT_OK``): done.
- **1** (``EXIT_FAILED``): some input could not be processed. ``run`` raises a
  :class:`~bmetoolkit.errors.BmetoolkitError` (printed with its command-line hint, naming the
  file), or, when it carried on past failures it has printed (``batch``, ``convert``), returns
  ``EXIT_FAILED``. Not enough memory is 1 too.
- **2** (``EXIT_USAGE``): the arguments are wrong: argparse's own checks, or ``run`` raising
  :class:`~bmetoolkit.errors.UsageError` for arguments that do not fit together.
- **130** (``EXIT_INTERRUPTED``): Ctrl-C (and SIGTERM during a batch). ``set_defaults
  (interrupted="...")`` adds what the user should know then (what was kept).

Output read only in part (``bmetoolkit info DIR | head``) ends the command quietly: the rest
of what it prints is dropped, with exit code 1, as Python itself does on a broken pipe (no
traceback).

A bad parameter file or inline JSON (``--params``) is input that could not be processed: 1,
from every command.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from bmetoolkit.commands import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from bmetoolkit.concurrency import one_blas_thread
from bmetoolkit.errors import BmetoolkitError, UsageError
from bmetoolkit.lean_imports import lean_nibabel_imports, lean_scipy_imports
from bmetoolkit.provenance import running_version

__all__ = ["command_names", "exit_code", "get_parser", "main"]

#: What the user reads when memory runs out.
_NO_MEMORY = (
    "not enough memory for these images; check their sizes with `bmetoolkit info PATH`, "
    "or close other programs"
)


class _VersionAction(argparse.Action):
    """``--version``: the version with the digest of the code
    (``0.1.0.dev0+code.0b349af5beb6``; between releases the number alone does not say which
    code ran), computed only when asked for."""

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        print(f"bmetoolkit {running_version()}")
        parser.exit()


def get_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Build the argument parser of the ``bmetoolkit`` command.

    With the name of a ``command``, only that command is registered (its module alone is
    imported: what running it needs); with None, or a name that is no command, every one.
    """
    parser = argparse.ArgumentParser(
        prog="bmetoolkit",
        description="Find and measure bone marrow edema and Modic changes on T1 + T2/STIR MRI.",
    )
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="show the version")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _command_modules(command):
        module.register(commands)
    return parser


def command_names() -> list[str]:
    """The names of the commands: the modules of :mod:`bmetoolkit.commands` (not imported)."""
    import pkgutil

    from bmetoolkit import commands

    return sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if not m.ispkg)


def _command_modules(command: str | None = None) -> list[Any]:
    """The modules of :mod:`bmetoolkit.commands`, each adding one command with ``register``
    (only ``command``'s when it names one)."""
    import importlib
    import importlib.util

    if command and command.isidentifier() and not command.startswith("_"):
        name = f"bmetoolkit.commands.{command}"
        if importlib.util.find_spec(name) is not None:
            module = importlib.import_module(name)
            if hasattr(module, "register"):
                return [module]
    return [importlib.import_module(f"bmetoolkit.commands.{name}") for name in command_names()]


def _command_in(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names: its first word, unless that is an option (``--help``,
    ``--version``: the top level's only options, none taking a value)."""
    return argv[0] if argv and not argv[0].startswith("-") else None


def exit_code(error: BaseException) -> int | None:
    """The exit code of an error a command raised; None for a bug (which is re-raised).

    Examples
    --------
    >>> exit_code(UsageError("give --out")), exit_code(BmetoolkitError("damaged"))
    (2, 1)
    >>> exit_code(KeyboardInterrupt()), exit_code(ZeroDivisionError()) is None
    (130, True)
    """
    if isinstance(error, UsageError):
        return EXIT_USAGE
    if isinstance(error, BmetoolkitError | MemoryError):
        return EXIT_FAILED
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return None


def prepare_process() -> None:
    """What the command line sets up before a command imports numpy and scipy: numpy's BLAS
    on one thread (:func:`bmetoolkit.concurrency.one_blas_thread`) and ``scipy.ndimage``
    and nibabel without the modules no command uses (:mod:`bmetoolkit.lean_imports`).
    None changes a result beyond its last bits: on one BLAS thread the reference fits
    give what batch workers and a one-core machine give (``docs/log/speed.md``, 2026-12-01,
    session 17)."""
    one_blas_thread()
    lean_scipy_imports()
    lean_nibabel_imports()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``bmetoolkit`` command line with ``argv`` and return its exit code."""
    prepare_process()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return _main(argv)
    except BrokenPipeError:
        if not _stdout_is_broken():
            raise  # another pipe's error: a bug, not the reader of stdout gone
        _drop_stdout()
        return EXIT_FAILED


def _main(argv: list[str]) -> int:
    parser = get_parser(_command_in(argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help, --version and usage errors
        return EXIT_OK if exc.code in (0, None) else EXIT_USAGE
    with _silenced_warnings():
        try:
            return args.handler(args)
        except (Exception, KeyboardInterrupt) as exc:
            code = exit_code(exc)
            if code is None:
                raise
            print(f"bmetoolkit {args.command}: {_message(exc, args)}", file=sys.stderr)
            return code


def _stdout_is_broken() -> bool:
    """Whether stdout is a pipe whose reader went away (`| head`): polled, it reports an
    error. False where that cannot be told (no ``poll``, stdout without a descriptor)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):
        return False


def _drop_stdout() -> None:
    """Send what is still to be printed to the null device: the reader of stdout is gone, and
    flushing it at exit would raise again (the Python documentation's recipe, "Note on
    SIGPIPE")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # stdout replaced, without a descriptor
        pass


def _message(error: BaseException, args: argparse.Namespace) -> str:
    if isinstance(error, KeyboardInterrupt):
        note = getattr(args, "interrupted", None)
        return "interrupted" + (f"; {note}" if note else "")
    if isinstance(error, BmetoolkitError):
        return f"error: {error.for_cli()}"
    return f"error: {_NO_MEMORY}"  # the only other error exit_code accepts


@contextlib.contextmanager
def _silenced_warnings() -> Iterator[None]:
    """Silence library warnings (numpy, nibabel, pydicom) while a command runs.

    They are about values bmetoolkit checks itself (what matters reaches the user as a typed
    error or a report note), so on a terminal they would only be noise. Following the
    Python documentation's convention, nothing is changed when warnings were configured
    (``python -W ...`` or ``PYTHONWARNINGS``).
    """
    if sys.warnoptions:
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
