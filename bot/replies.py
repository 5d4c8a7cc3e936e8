"""Channel-neutral replies: what the core says, before any channel renders it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Button", "Citation", "Image", "Reply", "shorten"]


@dataclass(frozen=True, slots=True)
class Button:
    """A choice offered to the member; ``payload`` is what choosing it sends back.

    Payloads: ``faq:<entry_id>`` opens an entry, ``cmd:<name>`` runs a command
    (``cmd:lienhe`` hands over to staff), ``law:<entry_id>`` shows the entry's
    basis verbatim, ``dieu:<document-slug>:<article>:<page>`` pages an article.
    """

    label: str
    payload: str


@dataclass(frozen=True, slots=True)
class Citation:
    """One reference of the legal basis shown under an answer.

    ``document`` is the document's name ("Luật HTX 2023 (17/2023/QH15)"),
    ``article`` the unit ("Điều 33 khoản 1", empty for a whole document) and
    ``ref_id`` the corpus id ("17/2023/QH15:d33:k1").
    """

    document: str
    article: str
    ref_id: str = ""
    quotable: bool = False  # the text is held and can be shown verbatim


@dataclass(frozen=True, slots=True)
class Image:
    """A picture sent with a reply (a QR code): PNG bytes, and where the web server serves it.

    ``url`` is a path on our web server (``/faq/<id>/qr.png?...``): the web chat
    shows it from there, and Zalo, whose ``sendPhoto`` takes a URL, gets it
    under ``PUBLIC_BASE_URL``; Telegram uploads ``png``.
    """

    png: bytes
    url: str
    alt: str


@dataclass(frozen=True, slots=True)
class Reply:
    """One message to the member: plain text (channels escape it), buttons, citations.

    ``notice`` marks a short acknowledgement (Telegram shows it as the answer to
    the button press); ``edit`` asks the channel to replace the message whose
    button was pressed instead of sending a new one (paging through lists);
    ``bulk`` marks a message the outbox sends to many (Telegram may send it as a
    paid broadcast when that is switched on). ``image`` is sent before the text
    (as its photo, when the channel allows a caption that long).
    """

    text: str
    buttons: tuple[Button, ...] = ()
    citations: tuple[Citation, ...] = ()
    notice: bool = False
    edit: bool = False
    bulk: bool = False
    image: Image | None = None


def shorten(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters with "…" when longer."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
