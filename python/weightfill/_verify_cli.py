"""``weightfill verify``: the command's entry points, kept in :mod:`weightfill.checkpoint`
(``__main__`` takes one ``add_arguments``/``run`` pair per module)."""

from .checkpoint import add_verify_arguments as add_arguments
from .checkpoint import run_verify as run

__all__ = ["add_arguments", "run"]
