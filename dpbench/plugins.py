"""The one loader: built-in plugins, then third-party entry points, one at a time.

:func:`load_registry` returns a :class:`Registry` mapping names to specs. A third-party
plugin that fails to import is recorded in ``Registry.failures`` (and warned about) while
the others load; a spec that breaks the contract is rejected *alone* (recorded in
``Registry.rejected``, warned about, naming the spec) while the plugin's other specs load.
``strict=True`` or ``DPBENCH_STRICT_PLUGINS=1`` turns either into :class:`PluginError`.
Looking up a name that is not registered (:meth:`Registry.model`) says on the same line
when the name was rejected or when some plugin failed to load. Two specs with the same
name are always an error that names both plugins. ``DPBENCH_DISABLE_PLUGINS=1`` skips
third-party plugins.
"""
from __future__ import annotations

import importlib
import os
import pkgutil
import warnings
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import Any, Callable

import pluggy

from dpbench import hookspecs
from dpbench.specs import (DatasetSpec, MetricSpec, ModelSpec, SpecError, metric_base, validate_dataset_spec,
                           validate_metric_spec, validate_model_spec)

ENTRY_POINT_GROUP = "dpbench"
DISABLE_ENV = "DPBENCH_DISABLE_PLUGINS"
STRICT_ENV = "DPBENCH_STRICT_PLUGINS"

#: Packages whose public modules are the built-in plugins: every ``dpbench/models/*.py``,
#: ``dpbench/datasets/*.py`` and ``dpbench/metrics/*.py`` not starting with ``_`` implements
#: the hooks like any third-party plugin. Adding a model is adding one module there.
BUILTIN_PACKAGES = ("dpbench.models", "dpbench.datasets", "dpbench.metrics")


def builtin_plugin_modules() -> list[str]:
    """Dotted names of the built-in plugin modules, in a stable order."""
    names = []
    for package_name in BUILTIN_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_"):
                names.append(f"{package_name}.{info.name}")
    return sorted(names)


class PluginError(RuntimeError):
    """Loading plugins failed (strict mode, or a duplicate name)."""


@dataclass
class PluginInfo:
    """One loaded (or failed) plugin as ``dpbench plugins`` shows it."""

    name: str
    version: str
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    #: other names that designate the plugin: its distribution and top-level package
    aliases: tuple[str, ...] = ()

    def answers_to(self, name: str) -> bool:
        """Whether ``name`` is this plugin's name, distribution or package (``-``/``_`` alike)."""
        norm = name.strip().lower().replace("-", "_")
        return any(norm == n.lower().replace("-", "_") for n in (self.name, *self.aliases))


@dataclass
class Registry:
    """Specs by name, plus what was loaded and what failed."""

    models: dict[str, ModelSpec] = field(default_factory=dict)
    datasets: dict[str, DatasetSpec] = field(default_factory=dict)
    metrics: dict[str, MetricSpec] = field(default_factory=dict)
    plugins: list[PluginInfo] = field(default_factory=list)
    #: ``(kind, name) -> "plugin 'p' registered it but it was rejected: <why>"``
    rejected: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def failures(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.error]

    def model(self, name: str) -> ModelSpec:
        """The model spec called ``name``; ``KeyError`` lists the valid names."""
        return self._lookup(self.models, name, "model")

    def dataset(self, name: str) -> DatasetSpec:
        """The dataset spec called ``name``; ``KeyError`` lists the valid names."""
        return self._lookup(self.datasets, name, "dataset")

    def _lookup(self, table: dict, name: str, what: str):
        try:
            return table[name]
        except KeyError:
            pass
        message = f"unknown {what} {name!r}; valid: {', '.join(sorted(table))}"
        if (what, name) in self.rejected:
            message += f" ({self.rejected[(what, name)]})"
        elif self.failures:
            failed = "; ".join(f"{p.name!r} ({p.error})" for p in self.failures)
            message += f" (plugins that failed to load and may provide it: {failed})"
        raise UnknownName(message) from None

    def metric(self, key: str) -> MetricSpec | None:
        """The spec a result key belongs to (``name`` or ``name@qualifier``); ``None``
        for a key no plugin registered (kept in the results, shown nowhere)."""
        return self.metrics.get(metric_base(key))

    def metrics_where(self, **attrs: Any) -> list[MetricSpec]:
        """Registered metrics whose attributes equal ``attrs`` (``tasks=k`` tests membership),
        in column order."""
        def match(spec: MetricSpec) -> bool:
            return all((value in spec.tasks) if key == "tasks" else getattr(spec, key) == value
                       for key, value in attrs.items())
        return sorted((s for s in self.metrics.values() if match(s)), key=lambda s: (s.order, s.name))


class UnknownName(KeyError):
    """A name that is not registered; ``str()`` names the valid choices."""

    def __str__(self) -> str:
        return str(self.args[0])


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


#: (hook, validator, Registry attribute, word used in messages), one row per spec kind.
SPEC_KINDS: tuple[tuple[str, Callable[[Any], Any], str, str], ...] = (
    ("dpbench_register_models", validate_model_spec, "models", "model"),
    ("dpbench_register_datasets", validate_dataset_spec, "datasets", "dataset"),
    ("dpbench_register_metrics", validate_metric_spec, "metrics", "metric"),
)


def _collect(
    pm: pluggy.PluginManager, plugin: Any, plugin_name: str, strict: bool,
    rejected: dict[tuple[str, str], str],
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Call one plugin's hooks and return its validated specs per Registry attribute
    (nothing is added yet).

    An invalid spec is left out, recorded in ``rejected`` and warned about (an error when
    ``strict``); the plugin's other specs are kept."""
    found: dict[str, dict[str, Any]] = {attr: {} for _, _, attr, _ in SPEC_KINDS}
    hooks: list[str] = []
    tables = [(hook, kind, validate, found[attr]) for hook, validate, attr, kind in SPEC_KINDS]
    for hook_name, kind, validate, into in tables:
        impls = [i for i in getattr(pm.hook, hook_name).get_hookimpls() if i.plugin is plugin]
        for impl in impls:
            hooks.append(hook_name)

            def register(spec: Any, _validate=validate, _into=into, _kind=kind) -> None:
                try:
                    spec = replace(_validate(spec), plugin=plugin_name)
                except SpecError as exc:
                    if strict:
                        raise PluginError(f"plugin {plugin_name!r}: {exc}") from exc
                    name = getattr(spec, "name", None)
                    if isinstance(name, str):
                        rejected[(_kind, name)] = f"plugin {plugin_name!r} registered it but it was rejected: {exc}"
                    warnings.warn(f"dpbench: plugin {plugin_name!r}: skipping invalid {_kind}: {exc}",
                                  stacklevel=2)
                    return
                if spec.name in _into:
                    raise PluginError(f"plugin {plugin_name!r} registers {spec.name!r} twice")
                _into[spec.name] = spec

            impl.function(register=register)
    return found, hooks


def _merge(registry: Registry, found: dict[str, dict[str, Any]]) -> None:
    for _, _, attr, what in SPEC_KINDS:
        table, new = getattr(registry, attr), found[attr]
        for name, spec in new.items():
            if name in table:
                raise PluginError(
                    f"duplicate {what} name {name!r}: registered by plugin "
                    f"{table[name].plugin!r} and by plugin {spec.plugin!r}"
                )
        table.update(new)


def _ep_aliases(ep: metadata.EntryPoint) -> tuple[str, ...]:
    """The distribution name and the top-level package of an entry point's module."""
    dist = getattr(getattr(ep, "dist", None), "name", None)
    return tuple(a for a in (dist, ep.value.split(":")[0].split(".")[0]) if a)


def _dist_version(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return getattr(dist, "version", "") or ""


def load_registry(
    strict: bool | None = None,
    disable_third_party: bool | None = None,
    extra_plugins: list[tuple[str, Any]] | None = None,
) -> Registry:
    """Load built-ins, third-party entry points and ``extra_plugins`` into a Registry.

    Args:
        strict: fail on a broken third-party plugin (default: ``$DPBENCH_STRICT_PLUGINS``).
        disable_third_party: skip entry points (default: ``$DPBENCH_DISABLE_PLUGINS``).
        extra_plugins: ``(name, module_or_object)`` pairs registered like third-party
            plugins (used by tests and by applications embedding dpbench).
    """
    strict = _env_flag(STRICT_ENV) if strict is None else strict
    if disable_third_party is None:
        disable_third_party = _env_flag(DISABLE_ENV)
    from dpbench import __version__

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    registry = Registry()

    def add(name: str, version: str, builtin: bool, load: Callable[[], Any],
            aliases: tuple[str, ...] = ()) -> None:
        info = PluginInfo(name=name, version=version, builtin=builtin, aliases=aliases)
        registry.plugins.append(info)
        try:
            plugin = load()
            package = getattr(plugin, "__name__", "") or getattr(type(plugin), "__module__", "")
            if package and package.split(".")[0] not in info.aliases:
                info.aliases += (package.split(".")[0],)
            pm.register(plugin, name=name)
            pm.check_pending()
            found, info.hooks = _collect(pm, plugin, name, strict or builtin, registry.rejected)
        except PluginError:
            raise
        except Exception as exc:  # a broken plugin must not take the others down
            if pm.get_plugin(name) is not None:
                pm.unregister(name=name)
            info.error = f"{type(exc).__name__}: {exc}"
            if builtin or strict:
                raise PluginError(f"plugin {name!r} failed to load: {info.error}") from exc
            warnings.warn(f"dpbench: skipping plugin {name!r}: {info.error}", stacklevel=2)
            return
        _merge(registry, found)

    for module_name in builtin_plugin_modules():
        add(module_name, __version__, True, lambda m=module_name: importlib.import_module(m))
    if not disable_third_party:
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            add(ep.name, _dist_version(ep), False, ep.load, _ep_aliases(ep))
    for name, plugin in extra_plugins or []:
        add(name, "", False, lambda p=plugin: p)
    return registry


_DEFAULT: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load_registry()
    return _DEFAULT


def set_registry(registry: Registry | None) -> None:
    """Replace (or with ``None`` reset) the process-wide registry."""
    global _DEFAULT
    _DEFAULT = registry
