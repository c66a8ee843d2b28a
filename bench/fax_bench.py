"""Multi-fax (issue 6): concurrent fax lines over one Asterisk, pages per minute, success rate, Asterisk CPU.

    .venv/bin/python -m bench.fax_bench [--lines 4,8,16,32] [--waves 2] [--pages 2] [--mode t38|g711]

About 5 minutes with the defaults (each fax of 2 pages takes ~30-40 s; every line count runs `waves` rounds).

One local Asterisk 22 (sip.engine.Engine, the default dialplan) is both ends, as in tests/test_fax.py: faxes go
out through the `faxloop` trunk to the same Asterisk's second SIP transport, where fax number 8700 (T.38) or 8701
(audio only, G.711) answers with ReceiveFAX. The control plane runs in this process, as `switchboard serve` would
compose it (switchboard.telephony.Telephony, SWITCHBOARD_ASTERISK_MODE=external, SQLite): for each line count L it
submits L * waves faxes of the same PDF through FaxService.submit (conversion included), the sender keeps at most
L on a line, and every received fax is converted to PDF and filed in the recording store, so both directions'
work is on the same two cores. Figures per L: wall time from the first submit until every fax settled, pages per
minute (pages confirmed sent), success rate, the most faxes on a line at once, CPU of Asterisk and of this process
from /proc/<pid>/stat (utime+stime, 100 % = one core), and the whole machine's busy share.
"""

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.calls_bench import HOST, cpu_seconds, free_port, free_sip_port, machine_busy
from sip import dialplan
from sip.engine import Engine
from sip.fax.models import FaxState
from sip.fax.service import Recipient
from sip.provision import provision
from switchboard.core import config
from switchboard.core.context import Context
from switchboard.telephony import Telephony
from tests.support.asterisk_fixture import FAX_NUMBERS, FAX_TRUNK, fax_far_end


def say(message: str) -> None:
    print(f"… {message}", file=sys.stderr, flush=True)


def document(work: Path, pages: int) -> bytes:
    body = [
        f"/Helvetica findfont 36 scalefont setfont 72 720 moveto (Switchboard fax benchmark page {p}) show "
        f"4 setlinewidth 72 100 moveto 520 {300 + 40 * p} lineto stroke 72 200 {60 * p} 80 rectfill showpage"
        for p in range(1, pages + 1)
    ]
    (work / "doc.ps").write_text("%!PS\n" + "\n".join(body) + "\n")
    subprocess.run(
        ["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pdfwrite", "-sPAPERSIZE=a4",
         f"-sOutputFile={work / 'doc.pdf'}", str(work / "doc.ps")],
        check=True,
    )  # fmt: skip
    return (work / "doc.pdf").read_bytes()


async def run_lines(
    asterisk: config.Settings, engine: Engine, work: Path, lines: int, args: argparse.Namespace, data: bytes
) -> dict[str, Any]:
    var = work / f"cp-{lines}"
    spool = dialplan.Layout.for_settings(asterisk).base / "spool"
    settings = config.load(
        path=work / "absent.toml",
        environ={
            "SWITCHBOARD_PATHS_VAR_DIR": str(var),
            "SWITCHBOARD_ASTERISK_MODE": "external",
            "SWITCHBOARD_ASTERISK_AMI_PORT": str(asterisk.asterisk.ami_port),
            "SWITCHBOARD_ASTERISK_AMI_SECRET": dialplan.ami_secret(asterisk),
            "SWITCHBOARD_ASTERISK_RECORD_CALLS": "false",
            "SWITCHBOARD_FAX_SPOOL_DIR": str(spool / "fax"),
            "SWITCHBOARD_FAX_TRUNK": FAX_TRUNK,
            "SWITCHBOARD_FAX_LINES": str(lines),
            "SWITCHBOARD_FAX_RETRY_SECONDS": "5",
            "SWITCHBOARD_FAX_MAX_ATTEMPTS": "1",  # a failure counts as one: the success rate is per attempt
            "SWITCHBOARD_FAX_STATION_ID": FAX_NUMBERS["t38"],
        },
    )
    ctx = Context.from_settings(settings)
    await ctx.db.migrate()
    telephony = Telephony(ctx, definition=engine.definition)
    await telephony.start()
    try:
        assert telephony.ami is not None and telephony.faxes is not None
        await telephony.ami.wait_up(15)
        faxes = telephony.faxes
        number = FAX_NUMBERS[args.mode]
        count = lines * args.waves
        pid = engine.pid()
        asterisk_cpu, own_cpu, busy = cpu_seconds(pid), time.process_time(), machine_busy()
        started = time.monotonic()
        for _ in range(count):
            await faxes.submit("bench", data, [Recipient(number)])
        submitted = time.monotonic() - started
        while (waiting := await faxes.pending()) and time.monotonic() - started < args.timeout:
            await asyncio.sleep(0.5)
        wall = time.monotonic() - started
        asterisk_cpu, own_cpu = cpu_seconds(pid) - asterisk_cpu, time.process_time() - own_cpu
        busy = machine_busy() - busy
        rows = await faxes.search(direction="out", limit=10_000)
        sent = [f for f in rows if f.state == FaxState.sent]
        received = 0
        deadline = time.monotonic() + 20  # the last received faxes are still being filed
        while time.monotonic() < deadline:
            received = len([f for f in await faxes.search(direction="in", limit=10_000) if f.state == "received"])
            if received >= len(sent):
                break
            await asyncio.sleep(0.5)
        durations = sorted(h["seconds"] for f in sent for h in f.history if h["result"] == "sent")
        results = {r.result for r in rows if r.state != FaxState.sent}
        return {
            "lines": lines,
            "faxes": count,
            "unsettled": waiting,
            "sent": len(sent),
            "received": received,
            "success_rate": len(sent) / count,
            "failures": sorted(results),
            "pages_per_minute": sum(f.pages for f in sent) / (wall / 60),
            "wall_seconds": round(wall, 1),
            "submit_seconds": round(submitted, 2),
            "fax_seconds_median": durations[len(durations) // 2] if durations else None,
            "peak_lines": faxes.peak,
            "modes": sorted({f.mode for f in sent}),
            "asterisk_cpu_percent": round(100 * asterisk_cpu / wall, 1),
            "control_plane_cpu_percent": round(100 * own_cpu / wall, 1),
            "machine_busy_percent": round(100 * busy / wall / 2, 1),  # of both cores
        }
    finally:
        await telephony.stop()
        await ctx.db.close()


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="fax-bench-") as tmp:
        work = Path(tmp)
        sip_port, ami_port, loop_port = free_sip_port(), free_port(), free_port(socket.SOCK_DGRAM)
        settings = config.load(
            path=work / "absent.toml",
            environ={
                "SWITCHBOARD_PATHS_VAR_DIR": str(work / "asterisk-var"),
                "SWITCHBOARD_ASTERISK_SIP_HOST": HOST,
                "SWITCHBOARD_ASTERISK_SIP_PORT": str(sip_port),
                "SWITCHBOARD_ASTERISK_AMI_PORT": str(ami_port),
                "SWITCHBOARD_ASTERISK_RTP_PORT_START": "42000",
                "SWITCHBOARD_ASTERISK_RTP_PORT_END": "42999",
                "SWITCHBOARD_ASTERISK_UDPTL_PORT_START": "43000",
                "SWITCHBOARD_ASTERISK_UDPTL_PORT_END": "43999",
            },
        )
        runtime = await provision(settings, lambda step, detail: None)
        definition = dialplan.load_definition()
        trunks = [*definition.trunks, dialplan.Trunk(name=FAX_TRUNK, host=HOST, port=loop_port)]
        fax = [*definition.fax, dialplan.FaxNumber(number=FAX_NUMBERS["g711"], name="G711", audio_only=True)]
        engine = Engine(settings, runtime, definition.model_copy(update={"trunks": trunks, "fax": fax}))
        fax_far_end(engine, sip_port, loop_port)
        data = document(work, args.pages)
        results: dict[str, Any] = {"asterisk": runtime.version, "mode": args.mode, "pages": args.pages, "runs": []}
        try:
            await engine.start(timeout=30)
            say(f"Asterisk {runtime.version}: SIP {sip_port}, AMI {ami_port}, far end {loop_port}")
            for lines in args.lines:
                say(f"{lines} lines: {lines * args.waves} faxes of {args.pages} pages ({args.mode})")
                run = await run_lines(settings, engine, work, lines, args, data)
                results["runs"].append(run)
                say(json.dumps(run))
        finally:
            await engine.stop()
    print(json.dumps(results, indent=2))
    print(f"\nmode {args.mode}, {args.pages}-page document, {args.waves} faxes per line")
    print("| lines | faxes | sent | success | pages/min | wall s | median fax s | peak lines | Asterisk CPU % "
          "| control plane CPU % | machine busy % |")  # fmt: skip
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results["runs"]:
        print(
            f"| {r['lines']} | {r['faxes']} | {r['sent']} | {100 * r['success_rate']:.0f} % | "
            f"{r['pages_per_minute']:.1f} | {r['wall_seconds']} | {r['fax_seconds_median']} | {r['peak_lines']} | "
            f"{r['asterisk_cpu_percent']} | {r['control_plane_cpu_percent']} | {r['machine_busy_percent']} |"
        )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.fax_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=lambda v: [int(x) for x in v.split(",")], default=[4, 8, 16, 32])
    parser.add_argument("--waves", type=int, default=2, help="faxes per line for each line count")
    parser.add_argument("--pages", type=int, default=2)
    parser.add_argument("--mode", choices=("t38", "g711"), default="t38")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up on a line count after this long")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
