"""Content hashes of files (cache keys, model-zoo sha256 columns)."""
import hashlib
from typing import Optional


def file_sha256(path: str, n: Optional[int] = None) -> str:
    """Hex sha256 of the file at ``path`` (first ``n`` characters if
    given), read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()[:n]
