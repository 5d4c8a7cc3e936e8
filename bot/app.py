"""The composition root: the one place where stores, services, the core and channels are built.

``running_app`` builds and starts what ``coopbot run`` runs (served on the web by
``bot.web.serve``): settings -> database -> knowledge and NLU client -> answer
service -> conversation core (with its stores and the reminder service) -> web
chat and the chat-app channels whose token is set (``bot.channels.base.Channel``).
``answer_service`` builds the answer service alone (``coopbot ask`` and the other
commands), ``build_conversation`` the core on a given database (``running_app``
and ``chat_in_terminal``, which runs ``coopbot chat``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from bot.answers import AnswerService
from bot.answers.links import entry_links
from bot.channels.base import Channel
from bot.channels.telegram.app import TelegramChannel
from bot.channels.telegram.render import CHANNEL as TELEGRAM
from bot.channels.terminal import run_terminal
from bot.channels.webchat.chat import CHANNEL as WEB
from bot.channels.webchat.chat import WebChat, WebLimits
from bot.channels.zalo.channel import CHANNEL as ZALO
from bot.channels.zalo.channel import ZaloChannel
from bot.conversation import Conversation, StaffDesk
from bot.handlers.review import ReviewChat
from bot.metrics import Metrics
from bot.nlu_model.client import NLUClient
from bot.nlu_model.registry import ModelRegistry
from bot.nlu_model.retrain import ChatRetrain
from bot.nlu_model.review_queue import ReviewLog, ReviewQueue
from bot.nlu_model.service import ensure_nlu_service
from bot.nlu_model.swap import ModelKeeper, serving_model
from bot.profile import load_profile_options
from bot.sending import Senders
from bot.settings import Settings
from bot.store import stats
from bot.store.admin_sessions import AdminSessionStore
from bot.store.broadcasts import BroadcastStore
from bot.store.db import create_db_engine, upgrade_db
from bot.store.handovers import HandoverStore
from bot.store.members import MemberStore
from bot.store.messages import MessageLogStore
from bot.store.pushes import PushStore
from bot.store.shares import ShareStore
from bot.store.subscriptions import SubscriptionStore
from bot.tasks import cancel_and_wait
from knowledge.base import KnowledgeBase, load_knowledge_base
from knowledge.law.corpus import LegalCorpus
from knowledge.search import KnowledgeSearch
from nlu.build import TRAIN_DIR, load_examples
from scheduler.deadlines import load_rules
from scheduler.reminders import ReminderService

__all__ = [
    "Knowledge",
    "Runtime",
    "answer_service",
    "build_answers",
    "build_conversation",
    "chat_in_terminal",
    "running_app",
]

log = logging.getLogger(__name__)


# -- the answer service ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Knowledge:
    """What answers are made of: the entries, the legal corpus, the NLU training examples."""

    kb: KnowledgeBase
    corpus: LegalCorpus
    examples: dict[str, list[str]]

    @classmethod
    def load(cls) -> Knowledge:
        """Reads them from the repository (a legal text of unknown hash stops here)."""
        return cls(load_knowledge_base(), LegalCorpus.load(), load_examples(TRAIN_DIR))


def build_answers(
    settings: Settings, knowledge: Knowledge, nlu: NLUClient | None, review_log: ReviewLog | None
) -> AnswerService:
    """The answer service (``nlu`` None: lexical search only; ``review_log`` None: no review)."""
    return AnswerService(
        knowledge.kb,
        KnowledgeSearch(knowledge.kb, knowledge.examples),
        nlu,
        threshold=settings.nlu_confidence_threshold,
        search_min_score=settings.search_min_score,
        search_min_coverage=settings.search_min_coverage,
        review_log=review_log,
        review_threshold=settings.review_confidence_threshold,
        corpus=knowledge.corpus,
    )


@contextlib.asynccontextmanager
async def _nlu_client(
    settings: Settings, registry: ModelRegistry, *, running: bool
) -> AsyncIterator[NLUClient]:
    """A client of the NLU service, started (with the registry's model) if none answers.

    ``running`` (``coopbot run``): train a model when there is none, and record the
    first model served as deployed; a command only reads the registry.
    """
    async with (
        ensure_nlu_service(
            settings,
            train_if_missing=running,
            choose=lambda: serving_model(registry, settings.reviewed_data, record=running),
        ) as endpoint,
        endpoint.client(timeout=settings.nlu_timeout) as nlu,
    ):
        yield nlu


@contextlib.asynccontextmanager
async def answer_service(
    settings: Settings, *, use_nlu: bool = True, review: bool = True
) -> AsyncIterator[AnswerService]:
    """Builds the answer service (starting the NLU service if needed) and closes it after use.

    ``use_nlu=False``: lexical search only; ``review=False``: no question asked
    through it is ever kept for review.
    """
    knowledge = Knowledge.load()
    engine = create_db_engine(settings.database_url)
    upgrade_db(engine)
    review_log = ReviewLog(engine) if review else None
    try:
        if not use_nlu:
            yield build_answers(settings, knowledge, None, review_log)
            return
        registry = ModelRegistry(engine, settings.model_dir)
        async with _nlu_client(settings, registry, running=False) as nlu:
            yield build_answers(settings, knowledge, nlu, review_log)
    finally:
        engine.dispose()


# -- the conversation core ---------------------------------------------------------------


def build_conversation(
    settings: Settings,
    engine: Engine,
    answers: AnswerService,
    senders: Senders,
    *,
    review: ReviewChat | None = None,
) -> tuple[Conversation, ReminderService]:
    """The conversation core on ``engine``, and the reminder service it plans with.

    The reminder service is built, not started (``running_app`` starts it when
    REMINDERS_ENABLED); ``review``: the admins' review commands (None: off).
    """
    rules = load_rules()
    options = load_profile_options()
    reminders = ReminderService(
        engine,
        senders,
        rules,
        options,
        poll_interval=settings.outbox_poll_seconds,
        rates={TELEGRAM: settings.telegram_rate, ZALO: settings.zalo_rate},
        per_chat=settings.per_chat_interval,
        concurrency=settings.outbox_concurrency,
        accounts=settings.bot_accounts,
        lease=dt.timedelta(seconds=settings.outbox_lease_seconds),
        leader_retry=settings.scheduler_leader_retry_seconds,
        kb=answers.kb,
        links=functools.partial(
            entry_links, settings.public_url, telegram_username=settings.telegram_bot_username
        ),
    )
    staff_chat = settings.telegram_staff_chat_id
    conversation = Conversation(
        answers=answers,
        kb=answers.kb,
        members=MemberStore(engine, settings.admin_ids),
        messages=MessageLogStore(engine),
        handovers=HandoverStore(engine),
        profile_options=options,
        senders=senders,
        staff=StaffDesk(
            TELEGRAM,
            str(staff_chat) if staff_chat is not None else None,
            per_member_hour=settings.handovers_per_member_hour,
            per_hour=settings.handovers_per_hour,
        ),
        deadline_rules=rules,
        subscriptions=SubscriptionStore(engine),
        training=reminders.training,
        broadcasts=BroadcastStore(engine, reminders.outbox),
        review=review,
        on_reminders_changed=reminders.plan_member,
        shares=ShareStore(engine, answers.kb.entries),
        public_url=settings.public_url,
        telegram_username=settings.telegram_bot_username,
        admin_sessions=AdminSessionStore(engine),
    )
    return conversation, reminders


# -- coopbot run ---------------------------------------------------------------------------


@dataclass
class Runtime:
    """Everything ``bot.web.serve`` runs, built and closed by ``running_app``."""

    settings: Settings
    engine: Engine
    nlu: NLUClient
    conversation: Conversation
    senders: Senders
    webchat: WebChat
    channels: list[Channel]  # the chat-app channels running
    reminders: ReminderService | None  # None: REMINDERS_ENABLED is off
    keeper: ModelKeeper
    retrain: ChatRetrain
    metrics: Metrics | None
    # Told of each FAQ page opened through a trainer's link: (entry id, trainer code, "web");
    # a plain function (run off the event loop) or a coroutine function. None: not counted.
    on_faq_open: Callable[[str, str, str], object] | None = None


def _chat_apps(settings: Settings, conversation: Conversation, engine: Engine) -> Iterator[Channel]:
    """The chat-app channels whose token is set, each built when the previous one started."""
    if settings.telegram_bot_token is not None:
        yield TelegramChannel(settings, conversation, engine)
    if settings.zalo_bot_token is not None:
        yield ZaloChannel(settings, conversation, engine)


@contextlib.asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[Runtime]:
    """Builds and starts everything configured; stops and closes it all on exit."""
    engine = create_db_engine(settings.database_url)
    try:
        await asyncio.to_thread(upgrade_db, engine)
        knowledge = Knowledge.load()
        registry = ModelRegistry(engine, settings.model_dir)
        async with _nlu_client(settings, registry, running=True) as nlu:
            answers = build_answers(settings, knowledge, nlu, ReviewLog(engine))
            senders = Senders()
            keeper = ModelKeeper(registry, nlu, settings.nlu_model_poll_seconds)
            metrics = None
            if settings.metrics_enabled:
                metrics = Metrics(engine, senders, nlu, lambda: keeper.loaded_file)
                answers.on_answer = metrics.observe
            retrain = ChatRetrain(settings, engine, keeper, senders)
            queue = ReviewQueue(engine, settings.reviewed_data, knowledge.examples.keys())
            review = ReviewChat(queue, knowledge.kb, retrain)
            conversation, reminders = build_conversation(
                settings, engine, answers, senders, review=review
            )
            await asyncio.to_thread(conversation.services.members.promote_admins)
            limits = WebLimits(
                settings.web_new_sessions_per_ip_hour,
                settings.web_new_sessions_per_hour,
                settings.web_messages_per_ip_minute,
                settings.web_messages_per_second,
            )
            webchat = WebChat(conversation, PushStore(engine), limits)
            senders.register(WEB, webchat)
            async with contextlib.AsyncExitStack() as running:
                await keeper.start()
                running.push_async_callback(keeper.stop)
                settling = asyncio.create_task(_settle_usage(engine), name="usage-rollup")
                running.push_async_callback(cancel_and_wait, settling)
                running.push_async_callback(retrain.stop)
                channels: list[Channel] = []
                for channel in _chat_apps(settings, conversation, engine):
                    await channel.start()
                    running.push_async_callback(_stop_channel, senders, channel)
                    senders.register(channel.name, channel.sender)
                    channels.append(channel)
                running_reminders = None
                if settings.reminders_enabled:
                    # Started after the channels, stopped before them: its sends finish first.
                    await reminders.start()
                    running.push_async_callback(reminders.stop)
                    running_reminders = reminders
                shares = conversation.services.shares
                yield Runtime(
                    settings,
                    engine,
                    nlu,
                    conversation,
                    senders,
                    webchat,
                    channels,
                    running_reminders,
                    keeper,
                    retrain,
                    metrics,
                    on_faq_open=shares.record_open if shares is not None else None,
                )
    finally:
        engine.dispose()


async def _settle_usage(engine: Engine, every_seconds: float = 3600.0) -> None:
    """Counts the dashboard's settled days (the longest window's) off the request path.

    At start-up, then hourly, so that no page view waits for a day to be counted;
    a page still counts a day itself if it comes first.
    """
    while True:
        try:
            counted = await asyncio.to_thread(stats.settle_window, engine, max(stats.PERIODS))
            if counted:
                log.info("dashboard rollup: %d day(s) counted", counted)
        except Exception:  # a database hiccup: the next round tries again
            log.exception("counting the dashboard's days failed")
        await asyncio.sleep(every_seconds)


async def _stop_channel(senders: Senders, channel: Channel) -> None:
    """Stops a chat-app channel (replies in flight finish first) and unregisters it."""
    try:
        await channel.stop()
    finally:
        senders.unregister(channel.name)


# -- coopbot chat ---------------------------------------------------------------------------


async def chat_in_terminal(settings: Settings) -> None:
    """``coopbot chat``: the terminal channel, through the core, until the person quits.

    The answers are those of the configured NLU model and knowledge (none kept for
    review); what the chat stores (the member, their messages, profile and
    hand-overs) lives in a database of this session only, removed at the end, so
    that no member nobody can reach (no process sends to ``terminal``) ever joins
    the real members' broadcasts and reminders.
    """
    async with answer_service(settings, review=False) as answers:
        with tempfile.TemporaryDirectory(prefix="coopbot-chat-") as folder:
            engine = create_db_engine(f"sqlite:///{Path(folder) / 'chat.db'}")
            try:
                await asyncio.to_thread(upgrade_db, engine)
                conversation, _ = build_conversation(settings, engine, answers, Senders())
                await run_terminal(conversation)
            finally:
                engine.dispose()
