"""Entry-point registries for objectives, benchmarks and protocols.

Built-ins are registered through this project's own entry points (see ``pyproject.toml``), the
same path a third-party distribution uses. Lookup is lazy: an entry point is imported the first
time its name is asked for. Problems are reported per name, so one broken plugin never stops
the others from working:

* an unknown name raises :class:`UnknownNameError` with a "did you mean" suggestion;
* a name claimed by two distributions raises :class:`ConflictError` naming both;
* a plugin whose import fails is listed with status ``"broken"`` and its error, and loading it
  raises :class:`BrokenPluginError`.
"""

from __future__ import annotations

import difflib
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

GROUPS = {
    "objectives": "mv2d_bench.objectives",
    "benchmarks": "mv2d_bench.benchmarks",
    "protocols": "mv2d_bench.protocols",
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
    _obj: Any = field(default=None, repr=False)
    _error: str | None = field(default=None, repr=False)
    _loaded: bool = field(default=False, repr=False)

    @property
    def status(self) -> str:
        if self.conflict or self._error:
            return "broken"
        return "ok"

    @property
    def error(self) -> str | None:
        if self.conflict:
            return conflict_message(self.group, self.name, self.conflict)
        return self._error

    def load(self) -> Any:
        if self.conflict:
            raise ConflictError(self.error)
        if not self._loaded:
            try:
                self._obj = self.entry_points[0].load()
            except Exception as exc:  # a plugin may fail in any way; report it, keep going
                last = traceback.format_exception_only(type(exc), exc)[-1].strip()
                self._error = f"{self.value} (from {self.distribution}) failed to import: {last}"
            self._loaded = True
        if self._error:
            raise BrokenPluginError(self._error)
        return self._obj

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
    name = dist.metadata["Name"] or getattr(dist, "name", "<unknown>")
    return name, dist.version


class Registry:
    """Names in one entry-point group, loaded lazily."""

    def __init__(self, kind: str):
        if kind not in GROUPS:
            raise ValueError(f"unknown registry kind {kind!r}; expected one of {sorted(GROUPS)}")
        self.kind = kind
        self.group = GROUPS[kind]
        self._entries: dict[str, Entry] | None = None

    def refresh(self) -> None:
        """Forget what was scanned (for tests that install distributions)."""
        self._entries = None

    def _scan(self) -> dict[str, Entry]:
        if self._entries is None:
            found: dict[str, Entry] = {}
            for ep in metadata.entry_points(group=self.group):
                dist, version = _dist_name(ep)
                if ep.name in found:
                    entry = found[ep.name]
                    if dist != entry.distribution and dist not in entry.conflict:
                        if not entry.conflict:
                            entry.conflict.append(f"{entry.distribution} {entry.version}")
                        entry.conflict.append(f"{dist} {version}")
                    entry.entry_points.append(ep)
                    continue
                found[ep.name] = Entry(ep.name, self.group, ep.value, dist, version, [ep])
            self._entries = dict(sorted(found.items()))
        return self._entries

    def names(self) -> list[str]:
        return list(self._scan())

    def entries(self) -> list[Entry]:
        return list(self._scan().values())

    def entry(self, name: str) -> Entry:
        entries = self._scan()
        if name not in entries:
            close = difflib.get_close_matches(name, list(entries), n=3, cutoff=0.5)
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
