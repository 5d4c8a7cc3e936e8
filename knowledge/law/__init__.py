"""The legal corpus: official texts (``sources/``), the register, references and checks.

Modules: ``register`` (documents.yml: which documents exist and when they are in
force), ``parser`` (a source text -> articles -> clauses -> points),
``references`` (what an answer cites), ``corpus`` (resolve, cite, quote, search),
``check`` (``coopbot law check``). Nothing is imported here, so that
``knowledge.base`` can use the references without loading the texts.
"""
