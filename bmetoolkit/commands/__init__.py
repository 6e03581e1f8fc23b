"""The commands of the ``bmetoolkit`` CLI, one module each, and their exit codes.

How to declare a command, and how errors become exit codes: :mod:`bmetoolkit.cli`.
"""

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "INCOMPLETE_OUTPUT"]

#: Done.
EXIT_OK = 0
#: Some input could not be processed (the reasons were printed, naming the files).
EXIT_FAILED = 1
#: The arguments are wrong (argparse's checks, or :class:`bmetoolkit.errors.UsageError`).
EXIT_USAGE = 2
#: Interrupted (Ctrl-C, or SIGTERM during a batch).
EXIT_INTERRUPTED = 130

#: What an interrupted command that writes a ``report.json`` last (``analyze``, ``compare``)
#: tells the user (``set_defaults(interrupted=...)``, see :mod:`bmetoolkit.cli`).
INCOMPLETE_OUTPUT = (
    "an output folder without report.json is incomplete (report.json is written last). "
    "Run the same command again to finish."
)
