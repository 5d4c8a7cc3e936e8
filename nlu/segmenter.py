"""Vietnamese word segmentation with offsets into the original text.

underthesea groups syllables into words ("hợp tác xã" is one word); this
module maps each word back onto the text it came from, so that a token's
``start``/``end`` always slice the original string, whatever its diacritics,
Unicode form, emoji or punctuation. Each word also gets a ``lemma``: the
diacritic-free, abbreviation-expanded form the featurizers see, so that
"Hợp tác xã", "hop tac xa" and "htx" look alike to the classifier.
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from nlu.textnorm import base_char_map, normalize_word, strip_diacritics

__all__ = ["DEFAULT_FIXED_WORDS", "Segment", "segment"]

log = logging.getLogger(__name__)

# Domain terms kept as one word even when typed without diacritics, where the
# underthesea model (trained on accented news text) would split them.
DEFAULT_FIXED_WORDS: tuple[str, ...] = (
    "hợp tác xã",
    "liên hiệp hợp tác xã",
    "tổ hợp tác",
    "thành viên",
    "đại hội",
    "hop tac xa",
    "to hop tac",
    "thanh vien",
    "dai hoi",
)

# underthesea rejects or mangles some inputs; beyond this length we segment
# whitespace chunks instead of whole text to keep time linear.
_MAX_SEGMENT_CHARS = 5000
# underthesea's tagger keeps state between calls: one thread segments at a time
# (the answer service retrieves in a worker thread while the NLU service parses).
_TAGGER_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class Segment:
    """One word: its text as written, its offsets, and its normalised lemma."""

    text: str
    start: int
    end: int
    lemma: str


def _underthesea_words(text: str, fixed_words: Sequence[str]) -> list[str]:
    from underthesea import word_tokenize  # imported lazily: ~0.5 s on first use

    try:
        with _TAGGER_LOCK:
            words = word_tokenize(text, use_token_normalize=False, fixed_words=list(fixed_words))
    except Exception:  # underthesea raises on odd input; never fail a message for it
        log.warning("underthesea could not segment a text; falling back to whitespace")
        return text.split()
    return [str(w) for w in words]


def _extend_over_marks(text: str, end: int) -> int:
    while end < len(text) and unicodedata.category(text[end]) == "Mn":
        end += 1
    return end


def segment(
    text: str,
    *,
    segment_plain: bool = False,
    fixed_words: Sequence[str] = DEFAULT_FIXED_WORDS,
    strip: bool = True,
    expand_abbreviations: bool = True,
) -> list[Segment]:
    """Splits ``text`` into words with offsets into ``text`` and normalised lemmas.

    Args:
        text: the text as received; offsets point into it.
        segment_plain: segment the diacritic-free copy instead of the original,
            so that accented and unaccented spellings are split the same way.
        fixed_words: multi-syllable terms never split.
        strip: make lemmas diacritic-free (otherwise only lower-cased).
        expand_abbreviations: expand "htx", "tv", "ko", "dc" ... in lemmas.
    """
    if not text or not text.strip():
        return []
    base, positions = base_char_map(text)
    source = base if segment_plain else unicodedata.normalize("NFC", text)
    if len(source) > _MAX_SEGMENT_CHARS:
        words: list[str] = []
        for chunk in source.split():
            words.extend(_underthesea_words(chunk, fixed_words))
    else:
        words = _underthesea_words(source, fixed_words)

    segments: list[Segment] = []
    cursor = 0
    for word in words:
        start = end = -1
        for syllable in word.split():
            needle = strip_diacritics(syllable)
            if not needle:
                continue
            found = base.find(needle, cursor)
            if found < 0:
                break
            if start < 0:
                start = found
            end = found + len(needle)
            cursor = end
        if start < 0 or end <= start:
            # underthesea changed the characters beyond recognition; the word
            # is dropped rather than given offsets that do not match the text.
            continue
        orig_start = positions[start]
        orig_end = _extend_over_marks(text, positions[end - 1] + 1)
        original = text[orig_start:orig_end]
        lemma = (
            normalize_word(original, expand_abbreviations)
            if strip
            else "_".join(original.lower().split())
        )
        segments.append(Segment(original, orig_start, orig_end, lemma or original))
    return segments
