"""A structural check of MATLAB v5 ``.mat`` files, run before scipy parses them.

scipy's v5 reader trusts the tags it reads: a single corrupt byte - an element type that does not
exist inside a cell, a size past the end of its container - can crash the interpreter
(a segmentation fault in scipy 1.17's ``mio5_utils``) instead of raising. This walk reads only
the tags (type, byte count) of the documented format (MathWorks, "MAT-File Format", R2023b,
chapter 1: data elements, miMATRIX array flags / dimensions / name / data sub-elements) and
refuses, with the byte offset, what no writer produces:

* a data type that is not a MATLAB data type (1-7, 9, 12-18);
* an element whose byte count runs past the end of the file or of its enclosing element;
* a numeric array whose data holds a different number of values than its dimensions say;
* a compressed element that does not decompress.

It checks structure only; values are left to the reader.
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

from mv2d_bench.loaders.base import DataError

HEADER = 128
MI_MATRIX, MI_COMPRESSED = 14, 15
ITEM_SIZE = {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8, 16: 1, 17: 2, 18: 4}
"""Bytes per value of each MATLAB data type (miINT8 .. miUTF32; 8, 10 and 11 are reserved)."""
VALID_TYPES = set(ITEM_SIZE) | {MI_MATRIX, MI_COMPRESSED}
MX_CELL, MX_STRUCT, MX_OBJECT, MX_CHAR, MX_SPARSE = 1, 2, 3, 4, 5
MX_NUMERIC = set(range(6, 16))  # double .. uint64
KNOWN_CLASSES = {MX_CELL, MX_STRUCT, MX_OBJECT, MX_CHAR, MX_SPARSE, *MX_NUMERIC}
COMPLEX_FLAG = 0x0800
MAX_DEPTH = 64


class _Corrupt(Exception):
    def __init__(self, offset: int, what: str) -> None:
        super().__init__(what)
        self.offset = offset
        self.what = what


class _Walker:
    def __init__(self, endian: str) -> None:
        self.u32 = struct.Struct(endian + "I")
        self.tag = struct.Struct(endian + "II")

    def element(self, buf: bytes, pos: int, end: int, where: int) -> tuple[int, int, int, int]:
        """(type, data start, data length, next element position) of the element at ``pos``."""
        if pos + 8 > end:
            raise _Corrupt(where + pos, f"a data element tag needs 8 bytes, {end - pos} remain")
        first, second = self.tag.unpack_from(buf, pos)
        if first >> 16:  # small data element: type and size packed in 4 bytes, data in 4
            mtype, size = first & 0xFFFF, first >> 16
            if size > 4:
                raise _Corrupt(where + pos, f"a small data element claims {size} bytes (max 4)")
            data, nxt = pos + 4, pos + 8
        else:
            mtype, size = first, second
            data = pos + 8
            nxt = data + size if mtype == MI_COMPRESSED else data + size + (-size % 8)
            if data + size > end:
                raise _Corrupt(
                    where + pos,
                    f"an element of {size} bytes runs past the end of its container "
                    f"({end - data} bytes left)",
                )
        if mtype not in VALID_TYPES:
            raise _Corrupt(where + pos, f"data type {mtype} is not a MATLAB data type")
        return mtype, data, size, min(nxt, end)

    def stream(self, buf: bytes, pos: int, end: int, where: int) -> None:
        while pos < end:
            mtype, data, size, pos = self.element(buf, pos, end, where)
            if mtype == MI_COMPRESSED:
                try:
                    inner = zlib.decompress(buf[data : data + size])
                except zlib.error as exc:
                    raise _Corrupt(
                        where + data, f"compressed data does not inflate ({exc})"
                    ) from None
                try:
                    self.stream(inner, 0, len(inner), 0)
                except _Corrupt as exc:
                    raise _Corrupt(
                        where + data - 8,
                        f"in the compressed element: at byte {exc.offset} of its data, {exc.what}",
                    ) from None
            elif mtype == MI_MATRIX:
                self.matrix(buf, data, data + size, where, 0)

    def ints(self, buf: bytes, data: int, size: int, mtype: int, where: int) -> list[int]:
        if mtype not in (5, 6) or size % 4:
            raise _Corrupt(where + data, f"expected 32-bit integers, found data type {mtype}")
        return [self.u32.unpack_from(buf, data + 4 * i)[0] for i in range(size // 4)]

    def matrix(self, buf: bytes, pos: int, end: int, where: int, depth: int) -> None:
        if pos == end:
            return  # an empty array (e.g. an empty cell member)
        if depth > MAX_DEPTH:
            raise _Corrupt(where + pos, f"arrays nested more than {MAX_DEPTH} deep")
        mtype, data, size, pos = self.element(buf, pos, end, where)
        flags = self.ints(buf, data, size, mtype, where)
        if len(flags) != 2:
            raise _Corrupt(where + data, f"array flags hold {len(flags)} words, expected 2")
        cls = flags[0] & 0xFF
        if cls not in KNOWN_CLASSES:
            return  # function handles, MATLAB objects (mxOPAQUE: strings, tables): not walked
        mtype, data, size, pos = self.element(buf, pos, end, where)
        dims = [d if d < 2**31 else d - 2**32 for d in self.ints(buf, data, size, mtype, where)]
        if len(dims) < 2 or min(dims) < 0:
            raise _Corrupt(where + data, f"array dimensions {dims}; expected two or more >= 0")
        count = math.prod(dims)
        pos = self.element(buf, pos, end, where)[3]  # the array name
        if cls in MX_NUMERIC:
            parts = 2 if flags[0] & COMPLEX_FLAG else 1
            for _ in range(parts):
                at = pos
                mtype, data, size, pos = self.element(buf, pos, end, where)
                item = ITEM_SIZE.get(mtype)
                if item is None or size != count * item:
                    raise _Corrupt(
                        where + at,
                        f"a {'x'.join(map(str, dims))} numeric array holds {size} bytes of data "
                        f"type {mtype}; expected {count} values",
                    )
        elif cls in (MX_CELL, MX_STRUCT, MX_OBJECT):
            fields = 1
            if cls == MX_OBJECT:
                pos = self.element(buf, pos, end, where)[3]  # class name
            if cls in (MX_STRUCT, MX_OBJECT):
                mtype, data, size, pos = self.element(buf, pos, end, where)
                (length,) = self.ints(buf, data, size, mtype, where)[:1] or [0]
                mtype, data, size, pos = self.element(buf, pos, end, where)
                fields = size // length if length else 0
            for _ in range(count * fields):
                at = pos
                mtype, data, size, pos = self.element(buf, pos, end, where)
                if mtype != MI_MATRIX:
                    raise _Corrupt(
                        where + at, f"a cell or field holds data type {mtype}, not an array"
                    )
                self.matrix(buf, data, data + size, where, depth + 1)
        elif cls in (MX_CHAR, MX_SPARSE):
            parts = []
            while pos < end:
                at = pos
                mtype, data, size, pos = self.element(buf, pos, end, where)
                if mtype in (MI_MATRIX, MI_COMPRESSED):
                    raise _Corrupt(where + at, f"a {_name(cls)} array holds a nested array")
                parts.append((mtype, size))
            if cls == MX_SPARSE:
                cols = dims[1] if len(dims) == 2 else -1
                if (
                    len(parts) not in (3, 4)
                    or any(t not in (5, 6) for t, _ in parts[:2])
                    or parts[1][1] != 4 * (cols + 1)
                ):
                    raise _Corrupt(
                        where + data,
                        f"a sparse {'x'.join(map(str, dims))} array needs row indices, "
                        f"{cols + 1} column pointers and values; found elements {parts}",
                    )


def _name(cls: int) -> str:
    return "sparse" if cls == MX_SPARSE else "char"


def check_v5_structure(path: str | Path) -> None:
    """Raise :class:`DataError` naming the file and the byte offset when the element structure
    of the MATLAB v5 file ``path`` is corrupt (see the module doc)."""
    path = Path(path)
    buf = path.read_bytes()
    if len(buf) < HEADER:
        raise DataError(f"{path}: {len(buf)} bytes; a MATLAB v5 file has a 128-byte header")
    endian = "<" if buf[126:128] == b"IM" else ">"
    try:
        _Walker(endian).stream(buf, HEADER, len(buf), 0)
    except _Corrupt as exc:
        raise DataError(
            f"{path}: cannot read MATLAB v5 data (byte {exc.offset}: {exc.what}); the file is "
            "truncated or corrupt - expected a complete .mat file"
        ) from None
