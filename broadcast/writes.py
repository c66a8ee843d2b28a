"""The outbox's writes to delivery rows after a send, batched: every result and receipt of one tick goes to the
database in one transaction (a few executemany statements), instead of a transaction per row.

Why: a transaction costs ~5-8 ms of the one event loop that also drives the peers, and a send made three of them
(claim, result, receipt); batched, the cost per delivery is a share of one statement. What is given up: a result
reaches the database up to one tick after the peer accepted it (`Outbox.settings.tick_seconds`), which widens the
window in which a crash leaves an accepted row `sending` (re-sent, with the same delivery id, after its lease) from
the length of one commit to one tick plus one commit. The claim still commits before any send, so no row is sent
that the database does not hold as `sending` under this worker's lease.

Receipts name a remote id. One whose result this worker has written is applied at once (in the same transaction
as that result or later); one it does not know (another worker's send, sent before a restart, or overtaking its
own result, which is common on a busy machine) is looked up by remote id; one not found yet is held and looked
up again at every flush, and dropped (logged) after `hold_seconds`."""

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update

from switchboard.core.context import Context
from switchboard.core.db import utcnow

from .channel import SendResult
from .models import Delivery, DeliveryState

log = logging.getLogger(__name__)

_T = Delivery.__table__


def _result(state: DeliveryState, **values: Any) -> Any:
    """The executemany statement recording a send's result on a row this worker still holds."""
    mine = (_T.c.id == bindparam("b_id"), _T.c.state == DeliveryState.sending, _T.c.worker == bindparam("b_worker"))
    values |= {"updated_at": bindparam("b_at"), "via": bindparam("b_via")}
    return update(_T).where(*mine).values(state=state, lease_until=None, **values)


_SENT = _result(DeliveryState.sent, sent_at=bindparam("b_at"), remote_id=bindparam("b_remote"), last_error="")
_FAILED = _result(DeliveryState.failed, last_error=bindparam("b_error"))
_RETRY = _result(
    DeliveryState.pending,
    next_attempt_at=bindparam("b_next"),
    last_error=bindparam("b_error"),
    attempts=_T.c.attempts - bindparam("b_undo"),  # being asked to wait is not a failed attempt
)
RECEIPTED = (DeliveryState.sent, DeliveryState.delivered, DeliveryState.unconfirmed)
_RECEIPT = (
    update(_T)
    .where(
        _T.c.channel == bindparam("b_channel"),
        _T.c.remote_id == bindparam("b_remote"),
        or_(*(_T.c.state == state for state in RECEIPTED)),  # not IN: executemany takes no expanding parameter
    )
    .values(
        state=bindparam("b_state"),
        delivered_at=bindparam("b_delivered"),
        last_error=bindparam("b_error"),
        updated_at=bindparam("b_at"),
        via=func.coalesce(bindparam("b_via"), _T.c.via),  # the number that answered a call; else what carried it
    )
)
_KNOWN_REMOTES = 200_000  # remote id -> warning id of this worker's recent sends (a 100,000-recipient warning fits)


@dataclass(frozen=True)
class Receipt:
    channel: str
    remote_id: str
    delivered: bool | None  # None: reached, not confirmed
    detail: str
    at: datetime
    arrived: float  # monotonic, for holding an early one
    via: str = ""


class DeliveryWrites:
    def __init__(self, ctx: Context, worker_id: str, hold_seconds: float) -> None:
        self.ctx = ctx
        self.worker_id = worker_id
        self.hold_seconds = hold_seconds
        self._sent: list[dict[str, Any]] = []
        self._sent_remotes: list[tuple[tuple[str, str], str]] = []  # ((channel, remote id), warning) of _sent
        self._failed: list[dict[str, Any]] = []
        self._retry: list[dict[str, Any]] = []
        self._receipts: list[Receipt] = []
        self._early: dict[tuple[str, str], Receipt] = {}
        self._remotes: OrderedDict[tuple[str, str], str] = OrderedDict()
        self.touched: set[str] = set()  # warnings whose rows changed since the owner last looked

    def __len__(self) -> int:
        return len(self._sent) + len(self._failed) + len(self._retry) + len(self._receipts)

    # --- what the outbox records (no I/O) ---

    def _row(self, row_id: str, at: datetime, via: str, **values: Any) -> dict[str, Any]:
        return {"b_id": row_id, "b_worker": self.worker_id, "b_at": at, "b_via": via} | values

    def sent(self, row_id: str, warning_id: str, channel: str, result: SendResult, at: datetime) -> None:
        self._sent.append(self._row(row_id, at, result.via, b_remote=result.remote_id))
        if result.remote_id:
            self._sent_remotes.append(((channel, result.remote_id), warning_id))
        self.touched.add(warning_id)

    def failed(self, row_id: str, warning_id: str, error: str, at: datetime, via: str = "") -> None:
        self._failed.append(self._row(row_id, at, via, b_error=error))
        self.touched.add(warning_id)

    def retry(
        self, row_id: str, warning_id: str, error: str, at: datetime, next_at: datetime, undo: int, via: str = ""
    ) -> None:
        self._retry.append(self._row(row_id, at, via, b_error=error, b_next=next_at, b_undo=undo))
        self.touched.add(warning_id)

    def receipt(
        self,
        channel: str,
        remote_id: str,
        delivered: bool | None,
        detail: str,
        via: str = "",
        at: datetime | None = None,
    ) -> None:
        self._receipts.append(Receipt(channel, remote_id, delivered, detail, at or utcnow(), time.monotonic(), via))

    # --- the flush ---

    async def flush(self) -> None:
        """Write everything recorded since the last flush in one transaction; on failure it is kept for the next."""
        if not len(self):
            return
        sent, failed, retry, receipts = self._sent, self._failed, self._retry, self._receipts
        remotes = self._sent_remotes
        self._sent, self._failed, self._retry, self._receipts, self._sent_remotes = [], [], [], [], []
        try:
            async with self.ctx.db.session() as session:
                connection = await session.connection()
                written = 0
                for statement, rows in ((_SENT, sent), (_FAILED, failed), (_RETRY, retry)):
                    if rows:
                        written += (await connection.execute(statement, rows)).rowcount or 0
                lost = len(sent) + len(failed) + len(retry) - written
                if lost and connection.dialect.supports_sane_multi_rowcount:  # asyncpg's executemany has no count
                    log.warning("%d delivery results found their row taken over by another worker", lost)
                self._remember(remotes)
                applied = await self._apply(connection, receipts)
        except Exception:
            self._sent, self._failed, self._retry = sent + self._sent, failed + self._failed, retry + self._retry
            self._receipts = receipts + self._receipts
            self._sent_remotes = remotes + self._sent_remotes
            raise
        self.touched |= applied

    def _remember(self, remotes: list[tuple[tuple[str, str], str]]) -> None:
        """The remote ids of results written in this transaction: only from now on may a receipt name them. (Known
        from the send on, a receipt overtaking its result would be applied before the row had its remote id.)"""
        self._remotes.update(remotes)
        while len(self._remotes) > _KNOWN_REMOTES:
            self._remotes.popitem(last=False)

    async def _apply(self, connection: Any, receipts: list[Receipt]) -> set[str]:
        """Apply the receipts whose rows are known or found, those held earlier included; hold the others. Returns
        the warnings touched."""
        receipts = [*self._early.values(), *receipts]
        self._early = {}
        unknown: dict[str, set[str]] = {}  # channel -> remote ids: looked up along (channel, remote_id), never a scan
        for r in receipts:
            if (r.channel, r.remote_id) not in self._remotes:
                unknown.setdefault(r.channel, set()).add(r.remote_id)
        for channel, remote_ids in unknown.items():
            found = await connection.execute(
                select(_T.c.remote_id, _T.c.warning_id).where(_T.c.channel == channel, _T.c.remote_id.in_(remote_ids))
            )
            for remote_id, warning_id in found.all():
                self._remotes[(channel, remote_id)] = warning_id
        ready = [r for r in receipts if (r.channel, r.remote_id) in self._remotes]
        cutoff = time.monotonic() - self.hold_seconds
        held = [r for r in receipts if (r.channel, r.remote_id) not in self._remotes]
        self._early = {(r.channel, r.remote_id): r for r in held if r.arrived > cutoff}
        if dropped := len(held) - len(self._early):
            log.warning(
                "%d receipts dropped: no delivery row has their remote id after %g s", dropped, self.hold_seconds
            )
        if ready:
            await connection.execute(_RECEIPT, [_receipt_row(r) for r in ready])
        return {self._remotes[(r.channel, r.remote_id)] for r in ready}


_RECEIPT_STATES = {True: DeliveryState.delivered, None: DeliveryState.unconfirmed, False: DeliveryState.failed}


def _receipt_row(receipt: Receipt) -> dict[str, Any]:
    return {
        "b_channel": receipt.channel,
        "b_remote": receipt.remote_id,
        "b_state": _RECEIPT_STATES[receipt.delivered],
        "b_delivered": receipt.at if receipt.delivered else None,
        "b_error": receipt.detail or ("" if receipt.delivered else "回执：未送达"),
        "b_at": receipt.at,
        "b_via": receipt.via or None,
    }
