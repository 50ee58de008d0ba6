"""Prompt tokenizer that needs no vocabulary download.

Words and punctuation are hashed (CRC32) into a fixed number of buckets. The text encoder
is trained from scratch, so it only needs stable, distinct ids per word, in any language.
"""
from __future__ import annotations

import re
import zlib
from typing import List, Sequence, Tuple

import torch

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
