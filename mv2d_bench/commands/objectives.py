"""``mv2d-bench objectives list|show``."""

from __future__ import annotations

import argparse
import inspect
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "objectives",
        help="list the installed objectives or show one",
        description="Objectives are found through the 'mv2d_bench.objectives' entry-point group; "
        "a plugin distribution registers its own the same way the built-ins do.",
    )
    osub = p.add_subparsers(dest="action", metavar="{list,show}", required=True)
    lp = osub.add_parser("list", help="list every installed objective with its status")
    lp.add_argument("--json", action="store_true", help="print a JSON list of objects")
    lp.set_defaults(func=_list)
    sp = osub.add_parser("show", help="formula, parameters and defaults, source distribution")
    sp.add_argument("name")
    sp.add_argument("--json", action="store_true", help="print a JSON object")
    sp.set_defaults(func=_show)


def _describe(entry) -> dict:
    obj = entry.try_load()
    return {
        "name": entry.name,
        "distribution": entry.distribution,
        "version": entry.version,
        "status": entry.status,
        "error": entry.error,
        "needs": sorted(getattr(obj, "needs", ())) if obj is not None else [],
    }


def _needs_only_per_n(entry) -> bool:
    """True for an objective class with ``needs_for(n_views)`` but no ``needs``."""
    obj = entry.try_load()
    return obj is not None and not hasattr(obj, "needs") and hasattr(obj, "needs_for")


def _list(args) -> int:
    from mv2d_bench.registry import registry

    rows = [_describe(e) for e in registry("objectives").entries()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no objectives installed (entry-point group 'mv2d_bench.objectives' is empty)")
        return 0
    width = max(len(r["name"]) for r in rows)
    where = {r["name"]: f"{r['distribution']} {r['version']}" for r in rows}
    wwidth = max(len(w) for w in where.values())
    per_n = {e.name for e in registry("objectives").entries() if _needs_only_per_n(e)}
    for r in rows:
        if r["status"] == "ok" and r["name"] in per_n:
            detail = "needs: depends on the number of views (needs_for)"
        elif r["status"] == "ok":
            detail = f"needs: {', '.join(r['needs']) or '-'}"
        else:
            detail = r["error"]
        print(f"{r['name']:<{width}}  {r['status']:<6}  {where[r['name']]:<{wwidth}}  {detail}")
    return 0


def _show(args) -> int:
    from mv2d_bench.objectives.contract import parameters_of
    from mv2d_bench.registry import registry

    entry = registry("objectives").entry(args.name)
    cls = entry.load()
    info = _describe(entry)
    info["objective_version"] = getattr(cls, "version", 1)  # as run records say
    info["formula"] = getattr(cls, "formula", "")
    info["parameters"] = parameters_of(cls)
    own_doc = cls.__dict__.get("__doc__")  # not torch.nn.Module's, for a class without one
    info["doc"] = inspect.cleandoc(own_doc) if isinstance(own_doc, str) else ""
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['name']}  (from {info['distribution']} {info['version']})")
    print(f"  formula:    {info['formula'] or '-'}")
    if _needs_only_per_n(entry):
        print("  needs:      depends on the number of views (needs_for)")
    else:
        print(f"  needs:      {', '.join(info['needs']) or '-'}")
    print(f"  version:    {info['objective_version']}")
    print("  parameters (defaults):" + ("" if info["parameters"] else " -"))
    for key, value in info["parameters"].items():
        print(f"    {key} = {value!r}")
    if info["doc"]:
        print()
        for line in info["doc"].splitlines():
            print(f"  {line}" if line else "")
    return 0
