"""Small helpers shared by several test modules."""

from __future__ import annotations

import gc
import sys


def python_calls(fn, *args, **kw):
    """fn(*args, **kw) and the names of the Python functions it ran (sys.setprofile sees
    every Python frame; C code, the fast paths included, is invisible to it). The garbage
    collector is off meanwhile: a collection that happens to start inside the call runs the
    gc.callbacks other libraries registered (torch's, JAX's), which are not the call's."""
    names = []

    def profile(frame, event, arg):
        if event == "call":
            names.append(frame.f_code.co_name)

    enabled = gc.isenabled()
    gc.disable()
    sys.setprofile(profile)
    try:
        result = fn(*args, **kw)
    finally:
        sys.setprofile(None)
        if enabled:
            gc.enable()
    return result, names
