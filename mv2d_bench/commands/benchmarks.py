"""``mv2d-bench benchmarks list|show``."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "benchmarks",
        help="list the installed benchmarks or show one's data card",
        description="Benchmarks are found through the 'mv2d_bench.benchmarks' entry-point group "
        "(built-ins and plugins alike). 'list' shows each one's status (ok, or broken with the "
        "import error), family, views and dimensions, classes and protocols; 'show' adds the data "
        "card: where the data comes from, the expected layout, known checksums and options.",
    )
    bsub = p.add_subparsers(dest="action", metavar="{list,show}", required=True)
    lp = bsub.add_parser("list", help="every installed benchmark with its status and facts")
    lp.add_argument("--json", action="store_true", help="print a JSON list of objects")
    lp.set_defaults(func=_list)
    sp = bsub.add_parser("show", help="one benchmark's facts and data card")
    sp.add_argument("name")
    sp.add_argument("--json", action="store_true", help="print a JSON object")
    sp.set_defaults(func=_show)


def describe_entry(entry: Any) -> dict[str, Any]:
    from mv2d_bench.loaders.base import describe_class

    cls = entry.try_load()
    row: dict[str, Any] = {
        "name": entry.name,
        "status": entry.status,
        "error": entry.error,
        "distribution": entry.distribution,
        "version": entry.version,
    }
    if cls is None:
        return row
    describe = getattr(cls, "describe_class", None)
    facts = describe() if callable(describe) else describe_class(cls)
    if "samples" not in facts:
        facts["samples"] = getattr(cls, "n_samples", None)
    facts.pop("name", None)
    facts["benchmark_version"] = facts.pop("version", None)
    row.update(facts)
    return row


def _rows() -> list[dict[str, Any]]:
    from mv2d_bench.registry import registry

    return [describe_entry(e) for e in registry("benchmarks").entries()]


def _dims(row: dict[str, Any]) -> str:
    views, dims = row.get("views") or [], row.get("view_dims") or []
    if views and dims and len(views) == len(dims):
        return " ".join(f"{v}:{d}" for v, d in zip(views, dims, strict=True))
    return ", ".join(views) if views else "-"


def _list(args) -> int:
    rows = _rows()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no benchmarks installed (entry-point group 'mv2d_bench.benchmarks' is empty)")
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        if r["status"] != "ok":
            print(f"{r['name']:<{width}}  broken  {r['error']}")
            continue
        classes = r.get("num_classes")
        samples = r.get("samples")
        n_views = len(r.get("views") or [])
        facts = [
            f"{r.get('family') or '?':<4}",
            f"{n_views} views [{_dims(r)}]" if n_views else "views: any",
        ]
        if classes is not None:
            facts.append(f"{classes} classes")
        if samples:
            facts.append(f"{samples} samples")
        facts.append(f"protocols: {', '.join(r.get('protocols') or []) or '-'}")
        print(f"{r['name']:<{width}}  ok      " + "  ".join(facts))
    return 0


def _show(args) -> int:
    from mv2d_bench.registry import registry

    entry = registry("benchmarks").entry(args.name)
    cls = entry.load()
    info = describe_entry(entry)
    card = getattr(cls, "card", None)
    info["card"] = (
        {
            "citation": card.citation,
            "license": card.license,
            "url": card.url,
            "layout": card.layout,
            "checksums": dict(card.checksums),
            "notes": card.notes,
        }
        if card is not None
        else None
    )
    info["options"] = dict(getattr(cls, "options_doc", {}) or {})
    info["doc"] = (cls.__doc__ or "").strip()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['name']}  (from {info['distribution']} {info['version']})")
    print(f"  family:    {info.get('family')} ({info.get('task')})")
    print(f"  views:     {_dims(info)}")
    print(f"  classes:   {info.get('num_classes')}   samples: {info.get('samples') or '-'}")
    print(f"  protocols: {', '.join(info.get('protocols') or []) or '-'}")
    if info["card"]:
        c = info["card"]
        print(f"  data:      {c['url']}")
        print(f"  layout:    {c['layout']}")
        print(f"  licence:   {c['license']}")
        print(f"  cite:      {c['citation']}")
        for name, digest in c["checksums"].items():
            print(f"  sha256:    {digest}  {name}")
        if c["notes"]:
            print(f"  notes:     {c['notes']}")
    for key, text in info["options"].items():
        print(f"  option {key}: {text}")
    return 0
