"""Prompt tokenizer that needs no vocabulary download.

Words and punctuation are hashed (CRC32) into a fixed number of buckets. The text encoder
is trained from scratch, so it only needs stable, distinct ids per word, in any language.
"""
from __future__ import annotations

import re
import zlib
from typing import Callable, List, Sequence, Tuple

import torch

from .classes import ClassInfo, ClassListError
from .config import ModelConfig

PAD, START, END = 0, 1, 2
_RESERVED = 3
_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def tokenize_words(text: str) -> List[str]:
    """Lower-cased words and punctuation marks of a prompt."""
    return _WORD.findall(text.lower())


def encode(texts: Sequence[str], vocab_size: int, context_length: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Token ids (N, context_length) with start/end markers, and each sequence's length.

    Prompts longer than the context are cut (the end marker is kept).
    """
    ids = torch.full((len(texts), context_length), PAD, dtype=torch.long)
    lengths = torch.empty(len(texts), dtype=torch.long)
    for i, text in enumerate(texts):
        words = [_RESERVED + zlib.crc32(w.encode("utf-8")) % (vocab_size - _RESERVED) for w in tokenize_words(text)]
        seq = [START] + words[: context_length - 2] + [END]
        ids[i, : len(seq)] = torch.tensor(seq)
        lengths[i] = len(seq)
    return ids, lengths


def check_prompts(classes: Sequence[ClassInfo], context_length: int = ModelConfig.context_length,
                  vocab_size: int = ModelConfig.vocab_size, warn: Callable[[str], None] = lambda msg: None) -> None:
    """Raise when two classes' prompts reach the text encoder as the same tokens; warn about each cut prompt."""
    keep = context_length - 2
    ids, _ = encode([c.prompt for c in classes], vocab_size, context_length)
    seen = {}
    for c, row in zip(classes, ids.tolist()):
        words = tokenize_words(c.prompt)
        if len(words) > keep:
            warn(f"The prompt of class '{c.name}' is cut to its first {keep} of {len(words)} words "
                 "(the text encoder reads no more).")
        other = seen.setdefault(tuple(row), c)
        if other is not c:
            raise ClassListError(f"Classes '{other.name}' and '{c.name}' have the same prompt "
                                 f"{_why_same(other.prompt, c.prompt, keep)}: every class needs its own "
                                 f"prompt. Make them differ within the first {keep} words.")


def _why_same(first: str, second: str, keep: int) -> str:
    a, b = tokenize_words(first), tokenize_words(second)
    if a == b:
        return repr(second)
    if a[:keep] == b[:keep]:
        return f"as the text encoder reads it (they differ only after the first {keep} words)"
    return "as the text encoder reads it (two of their words share a token: change one)"
