"""Entry-point registries for objectives, benchmarks and protocols.

Built-ins are registered through this project's own entry points (see ``pyproject.toml``), the
same path a third-party distribution uses::

    [project.entry-points."mv2d_bench.objectives"]
    my-kl = "my_package.objective:MyKL"

Lookup is lazy: scanning reads only the installed distributions' metadata, and an entry point is
imported the first time its object (or its status) is asked for. Problems are reported per name,
so one bad plugin never stops the others from working:

* an unknown name raises :class:`UnknownNameError` with a "did you mean" suggestion;
* a name claimed by two distributions is listed as broken and loading it raises
  :class:`ConflictError` naming both distributions;
* a plugin whose import fails (or whose object does not follow its kind's contract: for objectives
  :mod:`mv2d_bench.objectives.contract`, a base class for the others) is listed with
  status ``"broken"`` and its error, and loading it raises :class:`BrokenPluginError`.
"""

from __future__ import annotations

import difflib
import importlib
import re
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

GROUPS = {
    "objectives": "mv2d_bench.objectives",
    "benchmarks": "mv2d_bench.benchmarks",
    "protocols": "mv2d_bench.protocols",
}

# What an entry point of each kind must resolve to (imported only when an entry is loaded): a
# base class it must subclass, or a function that returns None or why the object is not usable.
BASES = {
    "objectives": "mv2d_bench.objectives.contract:check_objective_class",
    "benchmarks": "mv2d_bench.loaders.base:Benchmark",
    "protocols": "mv2d_bench.leaderboards.protocols.base:Protocol",
}


class RegistryError(LookupError):
    """Base class of every registry lookup problem."""


class UnknownNameError(RegistryError, KeyError):
    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class ConflictError(RegistryError):
    pass


class BrokenPluginError(RegistryError):
    pass


def _resolve(spec: str) -> type:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def normalize(dist_name: str) -> str:
    """PEP 503 normalised distribution name (``mv2d_bench`` and ``MV2D-Bench`` are one)."""
    return re.sub(r"[-_.]+", "-", dist_name).lower()


@dataclass
class Entry:
    """One registered name, as found in the installed distributions' metadata."""

    name: str
    group: str
    value: str
    distribution: str
    version: str
    entry_points: list[metadata.EntryPoint] = field(default_factory=list, repr=False)
    conflict: list[str] = field(default_factory=list)
    base: str | None = field(default=None, repr=False)
    _obj: Any = field(default=None, repr=False)
    _error: str | None = field(default=None, repr=False)
    _loaded: bool = field(default=False, repr=False)

    @property
    def kind(self) -> str:
        return self.group.rsplit(".", 1)[-1].rstrip("s")

    @property
    def status(self) -> str:
        """``"ok"`` or ``"broken"``; imports the entry point on first use to find out."""
        self.try_load()
        return "broken" if self.conflict or self._error else "ok"

    @property
    def error(self) -> str | None:
        """Why the entry is broken (``None`` when it is ok); imports it on first use."""
        if self.conflict:
            return conflict_message(self.group, self.name, self.conflict)
        self.try_load()
        return self._error

    def load(self) -> Any:
        if self.conflict:
            raise ConflictError(self.error)
        if not self._loaded:
            self._loaded = True
            where = f"{self.kind} {self.name!r} ({self.value}, from {self.distribution} "
            where += f"{self.version})"
            try:
                obj = self.entry_points[0].load()
            except (Exception, SystemExit) as exc:  # a plugin may fail in any way; report it
                last = traceback.format_exception_only(type(exc), exc)[-1].strip()
                self._error = f"{where} failed to import: {last}"
            else:
                self._error = self._check(obj, where)
                self._obj = obj if self._error is None else None
        if self._error:
            raise BrokenPluginError(self._error)
        return self._obj

    def _check(self, obj: Any, where: str) -> str | None:
        if self.base is None:
            return None
        base = _resolve(self.base)
        if not isinstance(base, type):  # a contract check
            problem = base(obj)
            return None if problem is None else f"{where} is not usable: {problem}"
        if not (isinstance(obj, type) and issubclass(obj, base)):
            got = obj.__name__ if isinstance(obj, type) else type(obj).__name__
            return (
                f"{where} is not usable: expected a subclass of "
                f"{base.__module__}.{base.__qualname__}, got {got}"
            )
        return None

    def try_load(self) -> Any | None:
        try:
            return self.load()
        except RegistryError:
            return None


def conflict_message(group: str, name: str, dists: list[str]) -> str:
    return (
        f"{group} name {name!r} is registered by more than one distribution: "
        + " and ".join(dists)
        + "; uninstall one of them or rename its entry point"
    )


def _dist_name(ep: metadata.EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "<unknown>", "?"
    name = dist.metadata["Name"] or getattr(dist, "name", None) or "<unknown>"
    return name, dist.version


class Registry:
    """Names in one entry-point group, loaded lazily."""

    def __init__(self, kind: str, base: str | None = None):
        if kind not in GROUPS:
            raise ValueError(f"unknown registry kind {kind!r}; expected one of {sorted(GROUPS)}")
        self.kind = kind
        self.group = GROUPS[kind]
        self.base = base if base is not None else BASES[kind]
        self._entries: dict[str, Entry] | None = None

    def refresh(self) -> None:
        """Forget what was scanned and loaded (after distributions were (un)installed)."""
        importlib.invalidate_caches()
        self._entries = None

    def _scan(self) -> dict[str, Entry]:
        if self._entries is None:
            found: dict[str, Entry] = {}
            claims: dict[str, dict[str, str]] = {}  # name -> normalised dist -> "dist version"
            for ep in metadata.entry_points(group=self.group):
                dist, version = _dist_name(ep)
                claims.setdefault(ep.name, {}).setdefault(normalize(dist), f"{dist} {version}")
                if ep.name in found:
                    found[ep.name].entry_points.append(ep)
                    continue
                found[ep.name] = Entry(
                    ep.name, self.group, ep.value, dist, version, [ep], base=self.base
                )
            for name, dists in claims.items():
                if len(dists) > 1:
                    found[name].conflict = sorted(dists.values())
            self._entries = dict(sorted(found.items()))
        return self._entries

    def names(self) -> list[str]:
        return list(self._scan())

    def entries(self) -> list[Entry]:
        return list(self._scan().values())

    def suggest(self, name: str) -> list[str]:
        """Registered names close to ``name`` (case-insensitive), best first."""
        entries = self._scan()
        lowered = {n.lower(): n for n in entries}
        close = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.5)
        return [lowered[c] for c in close]

    def entry(self, name: str) -> Entry:
        entries = self._scan()
        if name not in entries:
            close = self.suggest(name)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            known = ", ".join(entries) or "none installed"
            raise UnknownNameError(f"unknown {self.kind[:-1]} {name!r}{hint} (known: {known})")
        return entries[name]

    def load(self, name: str) -> Any:
        return self.entry(name).load()

    def __contains__(self, name: str) -> bool:
        return name in self._scan()


_REGISTRIES: dict[str, Registry] = {}


def registry(kind: str) -> Registry:
    """The process-wide registry of ``kind`` ("objectives", "benchmarks" or "protocols")."""
    if kind not in _REGISTRIES:
        _REGISTRIES[kind] = Registry(kind)
    return _REGISTRIES[kind]
