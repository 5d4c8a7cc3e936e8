"""Knowledge base entries (data files) and their loader and lexical search."""

from knowledge.base import (
    CHITCHAT_INTENTS,
    OUT_OF_SCOPE_INTENT,
    Category,
    Entry,
    KnowledgeBase,
    KnowledgeBaseError,
    load_knowledge_base,
)
from knowledge.law.references import Reference
from knowledge.search import KnowledgeSearch, SearchHit

__all__ = [
    "CHITCHAT_INTENTS",
    "OUT_OF_SCOPE_INTENT",
    "Category",
    "Entry",
    "KnowledgeBase",
    "KnowledgeBaseError",
    "KnowledgeSearch",
    "Reference",
    "SearchHit",
    "load_knowledge_base",
]
