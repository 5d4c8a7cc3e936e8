"""Rasa tokenizer for Vietnamese: underthesea word segmentation with original offsets.

Loaded by Rasa (``config.yml``: ``nlu.tokenizer.VietnameseTokenizer``) in the
NLU service's environment; imports only Rasa, underthesea and ``nlu.segmenter``.
Each token's ``text`` is the word as written and ``lemma`` its normalised form
(diacritic-free, abbreviations expanded), which the count-vector featurizers
read when ``use_lemma`` is on (their default).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.tokenizers.tokenizer import Token, Tokenizer
from rasa.shared.nlu.training_data.message import Message

from nlu.segmenter import DEFAULT_FIXED_WORDS, segment


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False
)
class VietnameseTokenizer(Tokenizer):
    """Splits Vietnamese text into words with underthesea."""

    @staticmethod
    def supported_languages() -> Optional[List[Text]]:
        """Only Vietnamese."""
        return ["vi"]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """Returns the component's default config."""
        return {
            # Rasa's own tokenizer options, unused for single intents.
            "intent_tokenization_flag": False,
            "intent_split_symbol": "_",
            "token_pattern": None,
            "prefix_separator_symbol": None,
            # Segment the diacritic-free copy of the text, so that "hợp tác xã"
            # and "hop tac xa" are split alike (offsets still point into the
            # original text).
            "segment_plain": False,
            # Lemmas without diacritics: what the featurizers see.
            "strip_diacritics": True,
            # Expand abbreviations such as "htx", "tv", "ko", "dc" in lemmas.
            "expand_abbreviations": True,
            # Multi-syllable terms never split; None means the built-in list.
            "fixed_words": None,
        }

    def __init__(self, config: Dict[Text, Any]) -> None:
        """Initialise the tokenizer from its configuration."""
        super().__init__(config)
        fixed = self._config.get("fixed_words")
        self._fixed_words = tuple(fixed) if fixed else DEFAULT_FIXED_WORDS

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "VietnameseTokenizer":
        """Creates a new component (see parent class for full docstring)."""
        return cls(config)

    def tokenize(self, message: Message, attribute: Text) -> List[Token]:
        """Tokenizes the text of the given attribute of the message."""
        text = message.get(attribute) or ""
        segments = segment(
            text,
            segment_plain=bool(self._config["segment_plain"]),
            fixed_words=self._fixed_words,
            strip=bool(self._config["strip_diacritics"]),
            expand_abbreviations=bool(self._config["expand_abbreviations"]),
        )
        tokens = [Token(s.text, s.start, lemma=s.lemma) for s in segments]
        if not tokens:
            # Rasa's featurizers expect at least one token, as its whitespace
            # tokenizer gives for empty or symbol-only text.
            tokens = [Token(text, 0)]
        return self._apply_token_pattern(tokens)
