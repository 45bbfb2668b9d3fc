"""weightfill for PyTorch: whole models by parameter name, meta-device models, and a drop-in
``torch.nn.init``.

- :func:`init_module` re-initializes a model in place with torch's own laws (or your rules),
  each tensor on the stream named by its qualified name;
- :func:`materialize` gives a meta-device model real storage and the same values;
- :func:`manifest` describes that initialization without touching a tensor;
- :mod:`weightfill.torch.init` has every function of ``torch.nn.init``, and :func:`patch`
  routes ``torch.nn.init`` to it so existing code constructs with weightfill.

torch is an optional dependency (the ``torch`` extra); ``import weightfill`` never imports it.
docs/torch.md has the laws, the rules and the measurements.
"""

from __future__ import annotations

from . import init
from .explain import explain
from ._model import init_module, manifest, materialize
from .init import manual_seed, patch

__all__ = ["init_module", "materialize", "manifest", "init", "patch", "manual_seed", "explain"]
