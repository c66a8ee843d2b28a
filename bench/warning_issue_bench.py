"""How long issuing one warning to a large directory group takes, and what the notices' watch then costs.

    .venv/bin/python -m bench.warning_issue_bench [--people 20000] [--confirm]

A fresh SQLite database with one group of --people members, each with a mobile and an e-mail address, and a warning
to it on SMS and e-mail, created, submitted and approved (bench.warnings_bench.prepare); then
`switchboard.warnings.flows.issue` is timed (the audience read, every row written). With --confirm the group is
asked to confirm (a notice linked to the warning) and the notices' watch is timed over it: one look with every row
pending, one after every delivery was marked delivered (each recipient becoming notified), and the next.
"""

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from sqlalchemy import update

from bench.warnings_bench import prepare, settings
from broadcast.models import Delivery, PublicWarning
from switchboard.core.context import Context
from switchboard.notices.live import Notices
from switchboard.warnings import flows as warnings


async def run(people: int, confirm: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="warning-issue-") as tmp:
        var = Path(tmp)
        url = f"sqlite+aiosqlite:///{var}/bench.db"
        warning_id, _ = await prepare(url, var, people, people)
        ctx = Context.from_settings(settings(var, url))
        try:
            async with ctx.db.session() as session:
                warning = await session.get(PublicWarning, warning_id)
                assert warning is not None
                warning.content = warning.content | {"audiences": warning.content["audiences"] | {"confirm": confirm}}
            links = {"sms": {"status": "ok"}, "email": {"status": "ok"}}
            began = time.perf_counter()
            _, rows = await warnings.issue(ctx, "alert_officer", warning_id, links)
            print(f"{people} people, confirm={confirm}: issue {time.perf_counter() - began:.2f} s, {rows} rows")
            if not confirm:
                return
            watch = Notices(ctx)
            for what in ("every row pending", "after every row delivered", "the next look"):
                if what == "after every row delivered":
                    async with ctx.db.session() as session:
                        await session.execute(update(Delivery).values(state="delivered", attempts=1))
                began = time.perf_counter()
                await watch.check()
                print(f"  the watch's look, {what}: {time.perf_counter() - began:.2f} s")
        finally:
            await ctx.db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=20000)
    parser.add_argument("--confirm", action="store_true", help="the group asked to confirm (a notice)")
    args = parser.parse_args()
    asyncio.run(run(args.people, args.confirm))


if __name__ == "__main__":
    main()
