"""What an mv2d-bench Hugging Face dataset holds, shared by the exporter and the ``hf`` benchmark.

Columns: one ``List(Value("float32"), length=d)`` column per view, named after the view (in view
order); ``label``, a ``ClassLabel`` with the class names; ``sample_index`` (int64), the row's
position in the benchmark's data, so that a reader can restore the original order and with it
the very split (same indices, same split sha256) and the same content digest.

Splits: ``train``, ``validation``, ``test``, the protocol's split of the exported benchmark.

Metadata (the "export block", JSON): format version, benchmark, view names and dims, class names,
the split (id, sha256, seed, fractions, per-part counts), the source data's sha256, the content
sha256 (:func:`mv2d_bench.loaders.mvc.content_sha256` of the exported float32 views and labels)
and the data card. In a ``save_to_disk`` folder it is the last line of each split's
``DatasetInfo.description`` (after :data:`BLOCK_PREFIX`), beside ``citation``, ``homepage`` and
``license`` from the card; in a parquet file it is the schema metadata key :data:`PARQUET_KEY`
(the features, ``ClassLabel`` names included, are under ``huggingface`` as ``datasets`` writes
them).
"""

from __future__ import annotations

import json
from typing import Any

FORMAT = "mv2d-bench/mvc-export@1"
BLOCK_PREFIX = "mv2d-bench export: "
PARQUET_KEY = b"mv2d_bench"
LABEL = "label"
INDEX = "sample_index"
SPLITS = ("train", "validation", "test")
SPLIT_OF_PART = {"train": "train", "val": "validation", "test": "test"}
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
    "testing": "test",
}
"""Split names found in the wild -> the three split roles."""


def features(view_dims: dict[str, int], class_names: list[str]):
    """The ``datasets.Features`` of an export (views in order, then label and sample index)."""
    import datasets

    cols: dict[str, Any] = {
        name: datasets.Sequence(datasets.Value("float32"), length=int(d))
        for name, d in view_dims.items()
    }
    cols[LABEL] = datasets.ClassLabel(names=list(class_names))
    cols[INDEX] = datasets.Value("int64")
    return datasets.Features(cols)


def description(benchmark: str, block: dict[str, Any]) -> str:
    """A ``DatasetInfo.description``: one human line, then the export block as one JSON line."""
    views = ", ".join(f"{v['name']} ({v['dim']})" for v in block["views"])
    head = (
        f"{benchmark}, exported by mv2d-bench {block['mv2d_bench_version']}: views {views}; "
        f"{len(block['class_names'])} classes; splits from {block['split']['split_id']}."
    )
    return head + "\n" + BLOCK_PREFIX + json.dumps(block, sort_keys=True)


def block_from_description(text: str | None) -> dict[str, Any] | None:
    for line in (text or "").splitlines():
        if line.startswith(BLOCK_PREFIX):
            return _parse(line[len(BLOCK_PREFIX) :])
    return None


def block_from_schema(metadata: dict[bytes, bytes] | None) -> dict[str, Any] | None:
    if not metadata or PARQUET_KEY not in metadata:
        return None
    return _parse(metadata[PARQUET_KEY].decode("utf-8", "replace"))


def _parse(text: str) -> dict[str, Any] | None:
    try:
        block = json.loads(text)
    except ValueError:
        return None
    return block if isinstance(block, dict) and block.get("format") == FORMAT else None
