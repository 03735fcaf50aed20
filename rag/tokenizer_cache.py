"""One `tokenizers.Tokenizer` per tokenizer file content, shared by the encoder and the reader.

e5-small's tokenizer holds a 250,002-piece Unigram vocabulary that takes ~0.8 s of CPU to build,
and the default reader uses the very same file (its export copies it byte for byte). Loading it
once instead of twice, while the encoder and the reader load side by side, takes ~0.8 s off a
new process's first answer (median 4.2 s -> 3.1 s on the bundled page, old and new code
alternating in new processes here).

A shared tokenizer has truncation and padding off and must stay so: callers truncate or pad
themselves (`truncated`).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from .paths import file_sha256

_loaded: dict[str, Any] = {}
_lock = threading.Lock()


def shared_tokenizer(path: str | Path) -> Any:
    """The tokenizer in `path` (a tokenizer.json), loaded once per distinct content."""
    from tokenizers import Tokenizer

    key = file_sha256(Path(path))  # ~30 ms for e5's 9-17 MB files: a fraction of a load
    with _lock:  # a second thread asking for the same file waits for the first one's load
        if key not in _loaded:
            tokenizer = Tokenizer.from_file(str(path))
            tokenizer.no_truncation()
            tokenizer.no_padding()
            _loaded[key] = tokenizer
        return _loaded[key]


def truncated(tokenizer: Any, text: str, max_length: int) -> Any:
    """`text`'s encoding cut to `max_length` tokens special tokens included, as the tokenizer's own
    truncation would cut it: the text is shortened, the special tokens kept."""
    encoding = tokenizer.encode(text, add_special_tokens=False)
    processor = tokenizer.post_processor
    encoding.truncate(max_length - (processor.num_special_tokens_to_add(False) if processor else 0))
    return tokenizer.post_process(encoding)
