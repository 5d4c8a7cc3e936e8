"""The answer service: a member's question in; a cited answer, a suggestion or a fallback out.

Order of decisions (ARCHITECTURE.md "Answering a question"):

1. clean the text (NFC, spaces, control characters); the original is kept for logs;
2. ask the NLU service; a confident chit-chat intent gets a chit-chat reply,
   a confident ``out_of_scope`` the fallback, a confident knowledge intent its entry;
3. otherwise (unsure, or NLU unreachable) BM25 search over the entries; a strong
   match is offered as "Có phải bạn hỏi về ...?";
4. otherwise the fallback: say plainly that the bot does not know, offer the
   closest topics and the hand-over to staff (/lienhe), and log the question
   for review. A guess is never presented as a legal answer.

A letter (a long message, or a story around its questions) goes another way
(:meth:`AnswerService._answer_letter`): its question parts are extracted
(questions.py), the domain gate (knowledge/domain.py) sends another field
of law to an honest "ngoài phạm vi" answer, and each question part (at most
three) is decided by one policy over the classifier's confidence, the entry
search and the clause retrieval (knowledge/law/retrieval.py): the entry when
they agree, the most relevant clause quoted verbatim when retrieval is strong
and no entry fits, the fallback otherwise. A premise from the repealed 2012 law
is corrected first (knowledge/premises.py).

The modules: service.py (``AnswerService``, the decisions above), policy.py
(``LetterPolicy``), model.py (``Answer``, ``AnswerKind`` and how an answer becomes
replies), render.py (an entry as text, citations and quote button), texts.py (the
fixed texts and the answers made of them), questions.py (a letter's question
parts), letters.py (scoring the service on letters).
"""

from __future__ import annotations

from bot.answers.model import Answer, AnswerKind
from bot.answers.policy import LetterPolicy
from bot.answers.render import citations, quote_button, render_entry
from bot.answers.service import AnswerService

__all__ = [
    "Answer",
    "AnswerKind",
    "AnswerService",
    "LetterPolicy",
    "citations",
    "quote_button",
    "render_entry",
]
