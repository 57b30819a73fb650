"""The ``avtool`` command line: one thin module per subcommand.

Modules here import only typer/rich at import time; torch, numpy and model code are
imported inside the command functions so that ``avtool --help`` stays fast.
"""
