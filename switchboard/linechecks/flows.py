"""A line check run on demand: audited, then started (its results follow as linecheck.* events)."""

from switchboard.core.audit import service as audit
from switchboard.core.context import Context
from switchboard.linechecks.models import RunOut
from switchboard.linechecks.service import LineChecks


async def run_now(ctx: Context, checks: LineChecks, actor: str) -> RunOut:
    lines = checks.lines
    run_id = checks.start("on_demand", actor)
    detail = {"lines": [f"{line.name} {line.number}" for line in lines]}
    await audit.record_alone(ctx, actor, "linecheck.run", "linecheck", run_id, detail)
    return RunOut(run_id=run_id, lines=len(lines))
