"""The JSON Schemas shipped in ``mv2d_bench/schemas`` (draft 2020-12) and schema checking that
reports every problem as a :class:`Violation` (file, JSON path, what was expected)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

SCHEMAS = {
    "run-record": "run-record.schema.json",
    "leaderboard": "leaderboard.schema.json",
    "reference-rows": "reference-rows.schema.json",
}


@dataclass(frozen=True, order=True)
class Violation:
    """One broken rule: ``file`` (or "" for in-memory data), ``path`` (a JSON path such as
    ``$.benchmark.split_id``) and ``message`` (what was found and what was expected)."""

    file: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"{where}{self.path}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {"file": self.file, "path": self.path, "message": self.message}


@cache
def load_schema(kind: str) -> dict[str, Any]:
    """The shipped schema named ``kind`` ("run-record", "leaderboard" or "reference-rows")."""
    if kind not in SCHEMAS:
        raise ValueError(f"unknown schema {kind!r}; expected one of {sorted(SCHEMAS)}")
    text = resources.files("mv2d_bench").joinpath("schemas", SCHEMAS[kind]).read_text("utf-8")
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return schema


@cache
def _validator(kind: str) -> Draft202012Validator:
    return Draft202012Validator(load_schema(kind))


def json_path(parts: Any) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _describe(schema: Any) -> str:
    if not isinstance(schema, dict):
        return ""
    if "description" in schema:
        return str(schema["description"])
    kind = schema.get("type")
    if "$ref" in schema:
        kind = schema["$ref"].rsplit("/", 1)[-1]
    if "const" in schema:
        return f"the constant {schema['const']!r}"
    if not isinstance(kind, str):
        return ""
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


def _messages(error: Any) -> list[tuple[list[Any], str]]:
    """(path parts, message) for one jsonschema error; 'if/then' errors unfold to their causes."""
    if error.validator == "required":
        out = []
        props = error.schema.get("properties", {})
        for name in error.validator_value:
            if isinstance(error.instance, dict) and name not in error.instance:
                what = _describe(props.get(name))
                msg = "required field is missing" + (f" (expected {what})" if what else "")
                out.append(([*error.absolute_path, name], msg))
        return out
    if error.validator == "additionalProperties" and error.validator_value is False:
        return [(list(error.absolute_path), f"unexpected field(s): {error.message}")]
    found = json.dumps(error.instance, ensure_ascii=False, default=str)
    if len(found) > 80:
        found = found[:77] + "..."
    if error.validator == "pattern":
        msg = f"{found} does not match the expected pattern {error.validator_value}"
    elif error.validator == "type":
        msg = f"expected {error.validator_value}, found {found}"
    elif error.validator == "const":
        msg = f"expected {error.validator_value!r}, found {found}"
    elif error.validator == "enum":
        msg = f"expected one of {error.validator_value}, found {found}"
    elif error.validator in ("minimum", "maximum", "minLength", "minItems", "minProperties"):
        msg = f"{found}: expected {error.validator} {error.validator_value}"
    else:
        msg = error.message
    what = _describe(error.schema)
    if what and error.validator in ("type", "pattern") and not what.startswith(("a ", "an ")):
        msg += f" ({what})"
    return [(list(error.absolute_path), msg)]


def check(data: Any, kind: str, file: str = "") -> list[Violation]:
    """Every schema violation of ``data`` against the ``kind`` schema, in document order."""
    out: list[Violation] = []
    for error in _validator(kind).iter_errors(data):
        for parts, msg in _messages(error):
            out.append(Violation(file, json_path(parts), msg))
    return sorted(set(out))
