"""Commands of the ``bmetoolkit`` CLI beyond the built-in ones, one module each.

Each module defines ``register(commands)``, which adds its sub-parser to the
``argparse`` sub-parsers action ``commands`` and sets ``handler`` (a function taking the
parsed arguments and returning the exit code: 0 ok, 1 failed, 2 usage) with
``set_defaults``. :func:`bmetoolkit.cli.get_parser` finds the modules by itself, so a new
command needs no edit elsewhere. Keep module imports light; import heavy code in the handler.
"""
