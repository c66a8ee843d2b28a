"""Line-check routes: run one now (202: the results follow over WS /api/v1/events as linecheck.failed and
linecheck.completed) and read each configured line's latest result with its history."""

from typing import Annotated

from fastapi import APIRouter, Query

from switchboard.api.deps import Ctx, DutyOfficer, LineCheckRuns, Officer
from switchboard.linechecks import flows
from switchboard.linechecks.models import LineCheckOut, LineOut, LinesOut, RunOut

router = APIRouter(prefix="/api/v1/linechecks", tags=["linechecks"])


@router.post("", status_code=202, response_model=RunOut)
async def run_now(ctx: Ctx, checks: LineCheckRuns, who: DutyOfficer) -> RunOut:
    return await flows.run_now(ctx, checks, who.username)


@router.get("", response_model=LinesOut)
async def lines(checks: LineCheckRuns, _: Officer, history: Annotated[int, Query(ge=1, le=100)] = 10) -> LinesOut:
    """Every configured line, its latest result first in its history (newest first, `history` at most)."""
    found = await checks.history(history)
    return LinesOut(
        running=checks.running,
        lines=[
            LineOut(
                name=line.name,
                number=line.number,
                kind=line.kind,
                latest=LineCheckOut.model_validate(found[line.number][0]) if found[line.number] else None,
                history=[LineCheckOut.model_validate(row) for row in found[line.number]],
            )
            for line in checks.lines
        ],
    )
