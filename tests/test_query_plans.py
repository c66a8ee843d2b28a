"""SQLite's plans for the outbox's per-row statements take the index they were written for, whatever order the
indexes were created in: without statistics SQLite breaks a tie between indexes by their order in the schema, and
`create_all` and batch migrations take that order from a set. A receipt once walked every receipted row of its
channel along the claim index (450 -> 110 SMS/s in bench.warnings_bench), depending on the run."""

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Index, create_engine, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql import ClauseElement

from broadcast.models import Delivery, DeliveryState
from broadcast.writes import _RECEIPT
from switchboard.models import Base

NOW = datetime(2026, 12, 2, tzinfo=UTC)
RECEIPT_ROW = {
    "b_channel": "sms", "b_remote": "r1", "b_state": "delivered", "b_delivered": NOW, "b_error": "", "b_at": NOW,
    "b_via": None,
}  # fmt: skip
OPEN = (DeliveryState.pending, DeliveryState.sending)
STATEMENTS: dict[str, tuple[ClauseElement, dict[str, Any], str]] = {
    "receipt": (_RECEIPT, RECEIPT_ROW, "ix_deliveries_remote"),
    "receipt lookup": (
        select(Delivery.remote_id, Delivery.warning_id).where(
            Delivery.channel == "sms", Delivery.remote_id.in_(["r1", "r2"])
        ),
        {},
        "ix_deliveries_remote",
    ),
    "claim due": (
        select(Delivery.id).where(
            Delivery.channel == "sms", Delivery.state == DeliveryState.pending, Delivery.next_attempt_at <= NOW
        ),
        {},
        "ix_deliveries_claim",
    ),
    "open row of a warning": (
        select(Delivery.id).where(Delivery.channel == "sms", Delivery.state.in_(OPEN), Delivery.warning_id == "w"),
        {},
        "ix_deliveries_claim",
    ),
}
SECONDARY: list[Index] = sorted(Delivery.__table__.indexes, key=lambda index: index.name or "")


def _plan(connection: Any, statement: ClauseElement, params: dict[str, Any]) -> str:
    compiled = statement.compile(dialect=sqlite.dialect(), compile_kwargs={"render_postcompile": True})
    values = compiled.construct_params(params)
    positional = [values[name] for name in compiled.positiontup or []]
    rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", tuple(positional)).all()
    return " | ".join(row[-1] for row in rows)


@pytest.mark.parametrize("order", list(itertools.permutations(SECONDARY)), ids=lambda o: ">".join(i.name for i in o))
def test_each_hot_statement_takes_its_index_in_any_creation_order(order: tuple[Index, ...]) -> None:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with engine.begin() as connection:
        for index in SECONDARY:
            connection.execute(text(f"DROP INDEX {index.name}"))
        for index in order:
            index.create(connection)
        for name, (statement, params, expected) in STATEMENTS.items():
            plan = _plan(connection, statement, params)
            assert f"USING INDEX {expected} " in plan, f"{name}: {plan}"
