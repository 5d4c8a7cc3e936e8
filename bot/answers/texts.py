"""The answers that are not an entry's: their fixed texts, a quoted clause, out of scope.

Also the correction that opens an answer to a letter built on a premise of the
repealed 2012 law.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from bot.answers.model import Answer, AnswerKind, classified
from bot.nlu_model.client import ParseResult
from bot.replies import Button, Citation
from knowledge.domain import Verdict
from knowledge.law.corpus import LegalCorpus
from knowledge.law.retrieval import Retrieved
from knowledge.premises import Premise

__all__ = [
    "CLAUSE_CAVEAT",
    "EMPTY_TEXT",
    "FALLBACK_TEXT",
    "OUT_OF_SCOPE_TEXT",
    "QUOTE_MARK",
    "clause_answer",
    "out_of_scope_answer",
    "with_corrections",
]

FALLBACK_TEXT = (
    "Xin lỗi, mình chưa có câu trả lời chắc chắn cho câu hỏi này nên không muốn "
    "đoán. Câu hỏi đã được ghi lại để cán bộ bổ sung.\n"
    "Bạn có thể chọn một chủ đề gần nhất bên dưới, hoặc gõ /lienhe để được cán bộ "
    "Liên minh HTX trả lời trực tiếp."
)
EMPTY_TEXT = (
    'Bạn hãy gõ câu hỏi về hợp tác xã, ví dụ: "HTX cần bao nhiêu thành viên?" '
    'hoặc "hạn nộp tờ khai thuế quý là khi nào?".'
)
QUOTE_MARK = "📜 Trích nguyên văn"
CLAUSE_CAVEAT = (
    "Đây là quy định gần nhất với câu hỏi của bạn, trích nguyên văn; mình chưa có câu trả "
    "lời soạn sẵn cho đúng trường hợp này. Hãy đọc cả điều luật, hoặc gõ /lienhe để cán bộ "
    "trả lời cụ thể."
)
OUT_OF_SCOPE_TEXT = (
    "Câu hỏi của bạn thuộc lĩnh vực {field}, ngoài phạm vi của Trợ lý HTX: mình chỉ trả "
    "lời về hợp tác xã, tổ hợp tác, liên hiệp HTX và các chính sách, thủ tục liên quan, nên "
    "không muốn trả lời đoán.\n"
    "Những câu hỏi như vậy thường được giải đáp tại: {where}.\n"
    "Nếu câu hỏi có phần liên quan đến HTX của bạn, hãy gõ lại riêng phần đó, hoặc gõ "
    "/lienhe để hỏi cán bộ Liên minh HTX."
)


def clause_answer(question: str, hit: Retrieved, parse: ParseResult | None) -> Answer:
    """The most relevant clause, verbatim and cited, with the full article and staff."""
    heading = f"{hit.ref.label} {hit.document.name}"
    text = "\n".join(
        [
            f"Quy định liên quan nhất: {heading} ({hit.article.title}):",
            "",
            f"{QUOTE_MARK}:",
            f"«{hit.text.strip()}»",
            "",
            CLAUSE_CAVEAT,
        ]
    )
    button = Button(
        f"📖 Đọc cả Điều {hit.ref.article}", f"dieu:{hit.document.slug}:{hit.ref.article}"
    )
    return Answer(
        question,
        AnswerKind.CLAUSE,
        text,
        **classified(parse),
        matched_by="law",
        extra_buttons=(button,),
        citations=(Citation(hit.document.name, hit.ref.label, hit.ref.id, True),),
        clauses=(hit.ref.id,),
    )


def out_of_scope_answer(question: str, verdict: Verdict, parse: ParseResult | None) -> Answer:
    """The honest "ngoài phạm vi" answer: which field, and where it is usually answered."""
    field_ = verdict.field
    assert field_ is not None  # out of scope always names the field it found
    return Answer(
        question,
        AnswerKind.OUT_OF_SCOPE,
        OUT_OF_SCOPE_TEXT.format(field=field_.name, where=field_.where),
        **classified(parse),
        matched_by="gate",
        field=field_.id,
    )


def with_corrections(answer: Answer, premises: Sequence[Premise], corpus: LegalCorpus) -> Answer:
    """The answer opened by a correction of each 2012 premise the letter states."""
    if not premises:
        return answer
    lines = [f"⚠️ Lưu ý: {p.correction} (Căn cứ: {corpus.cite(list(p.basis))})" for p in premises]
    return dataclasses.replace(answer, text="\n".join([*lines, "", answer.text]))
