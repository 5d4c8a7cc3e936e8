"""Knowledge base entries (data files) and their loader and lexical search."""

from knowledge.base import (
    CHITCHAT_INTENTS,
    OUT_OF_SCOPE_INTENT,
    Basis,
    Category,
    Entry,
    KnowledgeBase,
    KnowledgeBaseError,
    load_knowledge_base,
)
from knowledge.search import KnowledgeSearch, SearchHit

__all__ = [
    "CHITCHAT_INTENTS",
    "OUT_OF_SCOPE_INTENT",
    "Basis",
    "Category",
    "Entry",
    "KnowledgeBase",
    "KnowledgeBaseError",
    "KnowledgeSearch",
    "SearchHit",
    "load_knowledge_base",
]
