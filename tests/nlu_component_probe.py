"""Runs inside the NLU environment: tokenizes JSON lines from stdin with the real Rasa component."""

import json
import sys

from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from nlu.tokenizer import VietnameseTokenizer

config = {**VietnameseTokenizer.get_default_config(), **json.loads(sys.argv[1])}
tokenizer = VietnameseTokenizer(config)
for line in sys.stdin:
    text = json.loads(line)
    tokens = tokenizer.tokenize(Message(data={TEXT: text}), TEXT)
    print(json.dumps([[t.text, t.start, t.end, t.lemma] for t in tokens], ensure_ascii=False))
