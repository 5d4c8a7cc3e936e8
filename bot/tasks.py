"""Background tasks: stopping one the same way everywhere."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["cancel_and_wait"]


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancels ``task`` (None: nothing to do) and waits until it has ended.

    What the task ends with (its cancellation or an error it raised before)
    is not raised here: a stopping service has nothing left to do with it.
    """
    if task is None:
        return
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
