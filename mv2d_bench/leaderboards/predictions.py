"""Reading a predictions file (``mv2d-bench score``): one ``.npz`` archive (``numpy.savez``),
one array per key that the protocol documents.

Every problem names the file (and the key): a missing path or a folder, an empty file, a single
``.npy`` array where an archive is expected, bytes that are not a zip archive, a truncated or
corrupt archive (also a damaged member, found by its CRC), pickled objects, and arrays that are
not real numbers (complex, strings, records). :meth:`Protocol.check_arrays` then refuses what the
protocol cannot score (e.g. labels outside the classes of the logits).
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a member first, or an empty archive
SAVE_HINT = "write it with numpy.savez(FILE, key=array, ...)"


class PredictionsError(ValueError):
    """A predictions file that cannot be scored; the message names the file and the key."""


def _head(path: Path) -> bytes:
    if not path.exists():
        raise PredictionsError(f"{path}: no such file; expected an .npz archive")
    if path.is_dir():
        raise PredictionsError(f"{path}: is a folder; expected an .npz file")
    try:
        with open(path, "rb") as f:
            return f.read(8)
    except OSError as exc:
        raise PredictionsError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _check_container(path: Path) -> None:
    head = _head(path)
    if not head:
        raise PredictionsError(
            f"{path}: empty file (0 bytes); expected a .npz archive - {SAVE_HINT}"
        )
    if head.startswith(NPY_MAGIC):
        raise PredictionsError(
            f"{path}: a single .npy array (numpy.save), not a .npz archive of named arrays; "
            f"{SAVE_HINT}"
        )
    if not head.startswith(ZIP_MAGIC):
        raise PredictionsError(
            f"{path}: not a .npz archive (starts with {head[:8]!r}; an .npz is a zip file); "
            f"{SAVE_HINT}"
        )
    if not zipfile.is_zipfile(path):
        raise PredictionsError(
            f"{path}: truncated or corrupt .npz (the zip archive has no readable directory); "
            f"{SAVE_HINT}"
        )


def _real(arr: np.ndarray, path: Path, key: str) -> np.ndarray:
    kind = arr.dtype.kind
    if kind == "c":
        raise PredictionsError(
            f"{path}: key {key!r}: complex values (dtype {arr.dtype}); expected real numbers"
        )
    if kind not in "biuf":
        raise PredictionsError(
            f"{path}: key {key!r}: dtype {arr.dtype} is not numeric; expected integer or float "
            "numbers"
        )
    return arr


def read_predictions(
    path: str | Path, keys: Any, optional: Any = (), protocol_id: str = ""
) -> dict[str, np.ndarray]:
    """The arrays under ``keys`` (all required) and the ``optional`` keys that are present."""
    path = Path(path)
    _check_container(path)
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as data:
            files = list(data.files)
            missing = [k for k in keys if k not in files]
            if missing:
                under = f" for protocol {protocol_id}" if protocol_id else ""
                raise PredictionsError(
                    f"{path}: missing key(s) {', '.join(missing)}{under}; expected: "
                    f"{', '.join(keys)} (found: {', '.join(files) or 'no arrays'})"
                )
            for key in [*keys, *(k for k in optional if k in files)]:
                try:
                    arr = data[key]
                except ValueError as exc:
                    if "pickle" in str(exc):
                        raise PredictionsError(
                            f"{path}: key {key!r} holds Python objects (pickled); expected a "
                            "numeric array"
                        ) from None
                    raise PredictionsError(
                        f"{path}: key {key!r}: not a readable array ({exc}); the file is "
                        "truncated or corrupt"
                    ) from None
                except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
                    raise PredictionsError(
                        f"{path}: key {key!r}: cannot read ({type(exc).__name__}: {exc}); the "
                        "file is truncated or corrupt"
                    ) from None
                arrays[key] = _real(np.asarray(arr), path, key)
    except PredictionsError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        raise PredictionsError(
            f"{path}: truncated or corrupt .npz ({type(exc).__name__}: {exc}); {SAVE_HINT}"
        ) from None
    return arrays
