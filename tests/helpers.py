"""Small helpers shared by several test modules."""

from __future__ import annotations

import sys


def python_calls(fn, *args, **kw):
    """fn(*args, **kw) and the names of the Python functions it ran (sys.setprofile sees
    every Python frame; C code, the fast paths included, is invisible to it)."""
    names = []

    def profile(frame, event, arg):
        if event == "call":
            names.append(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        result = fn(*args, **kw)
    finally:
        sys.setprofile(None)
    return result, names
