"""A reader for the IDX format of MNIST and Fashion-MNIST, gzipped or plain.

Layout: two zero bytes, a type byte (0x08: unsigned byte), a byte with the number of
dimensions, one big-endian uint32 per dimension, then the values in C order.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from .base import DataError

_UNSIGNED_BYTE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """The uint8 array stored in `path`, which must have `ndim` dimensions (images 3,
    labels 1): anything else is a DataError naming the file."""
    try:
        raw = Path(path).read_bytes()
        if raw[:2] == _GZIP_MAGIC:
            raw = gzip.decompress(raw)
    # a bad CRC is an OSError (BadGzipFile), a cut-short file an EOFError, a garbled stream a zlib.error
    except (OSError, EOFError, zlib.error) as err:
        reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
        raise DataError(f"{path}: cannot be read ({reason}); the file is damaged or cut short, "
                        "fetch it again") from None
    expected = (_UNSIGNED_BYTE << 8) | ndim
    magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if magic != expected:
        found = "a file shorter than its header" if magic is None else f"magic number {magic:#010x}"
        raise DataError(f"{path}: not an IDX file of {ndim}-d unsigned bytes "
                        f"({found}, expected {expected:#010x})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: IDX header is cut short")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    values = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if values.size != int(np.prod(shape)):
        raise DataError(f"{path}: IDX header promises shape {shape} but the file holds {values.size} values")
    return values.reshape(shape)
