"""A user's own class where diffrep names a built-in one: ``{class_path: ..., init_args: {...}}``.

The same form as LightningCLI's, but kept as plain data in the method's hyper-parameters: a
checkpoint stays loadable with ``torch.load(weights_only=True)`` and rebuilds the same network from
its saved settings (a ``functools.partial`` from an ``OptimizerCallable`` would not), as long as the
user's module is importable where the checkpoint is read.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from diffrep.errors import ConfigError

Spec = str | dict[str, Any]


def is_plugin(spec: Any) -> bool:
    """A ``{class_path, init_args}`` dict, or a dotted class path string (``package.module.Class``)."""
    if isinstance(spec, dict):
        return True
    return isinstance(spec, str) and "." in spec and ":" not in spec and " " not in spec


def import_class(path: str, base: type, what: str) -> type:
    """The class at ``path``, which must subclass ``base``; one clear line otherwise."""
    module_name, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as err:
        raise ConfigError(f"{what} class_path {path!r} cannot be imported ({err}); give package.module.Class of a "
                          "module on the Python path (e.g. `pip install -e` your package, or set PYTHONPATH)") from err
    if not (inspect.isclass(cls) and issubclass(cls, base)):
        raise ConfigError(f"{what} class_path {path!r} is not a subclass of {base.__module__}.{base.__qualname__}")
    return cls


def class_path_of(spec: Spec, what: str) -> str:
    """The class path a spec names; one line naming the form when it is malformed."""
    if isinstance(spec, str):
        return spec
    unknown = set(spec) - {"class_path", "init_args"}
    if not isinstance(spec.get("class_path"), str) or unknown:
        raise ConfigError(f"{what} takes {{class_path: package.module.Class, init_args: {{...}}}}; got keys "
                          f"{sorted(spec)}")
    return spec["class_path"]


def build(spec: Spec, base: type, what: str, offered: dict[str, Any] | None = None, *args: Any) -> Any:
    """Instantiate ``spec``: its ``init_args``, plus those of ``offered`` (what diffrep knows, e.g.
    ``latent_dim``) that the class's ``__init__`` accepts and the spec does not set. ``args`` go first
    (e.g. an optimiser's parameters)."""
    path = class_path_of(spec, what)
    cls = import_class(path, base, what)
    given = dict((spec.get("init_args") if isinstance(spec, dict) else None) or {})
    parameters = inspect.signature(cls.__init__).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    for name, value in (offered or {}).items():
        if name not in given and (takes_any or name in parameters):
            given[name] = value
    try:
        return cls(*args, **given)
    except TypeError as err:
        raise ConfigError(f"{what} {path} could not be built with {sorted(given)}: {err}") from err
