"""Fax over real calls: Switchboard sends through the session's Asterisk to a fax number the same Asterisk serves
with ReceiveFAX (a trunk to its second SIP transport: tests/support/asterisk_fixture.py), once where T.38 is
negotiated and
once where the far end forces G.711 audio; the received pages match the sent ones below the header line; 8 faxes
run at once on a line limit; a far end that never answers fails after its retries; bad documents are refused
with a 422 and leave no job. All faxes go out together at the start of the module (each takes ~35-40 s), and
each test waits for its own."""

import asyncio
import base64
import io
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import pytest_asyncio
from PIL import Image, ImageSequence

from sip import dialplan
from sip.fax.service import report_outcome
from switchboard.api.app import create_app
from switchboard.core.config import Settings
from switchboard.core.context import Context
from switchboard.core.events import Event
from switchboard.telephony import Telephony
from tests.conftest import add_users, fresh_database_url, headers_for
from tests.support.asterisk_fixture import AsteriskHarness
from tests.support.phone_client import PhoneProcess
from tests.support.telephony_fixture import engine_settings, register
from tests.support.wait import until
from tests.test_warnings import content

LINES = 13
CONCURRENT = 8
DIRECTORY = (
    "organisation,department,name,title,mobile,fax,groups\n"
    "140105,应急管理局,王强,局长,,8700,值班传真组\n"
    "140105,应急管理局,李明,值班员,13800138000,,值班传真组\n"
    "140106,应急管理局,赵刚,科长,,8701,值班传真组\n"
    "140105,防汛办,周平,值班员,,8700,预警传真组\n"
)
MAX_HEADER_ROWS = 64  # spandsp adds its header line (32 rows at 196 lpi) on top of each page
NEVER_ANSWERS = "8008"  # the desk named 传真机, registered by a phone that lets it ring
BUSY = "8009"  # a desk whose phone answers every call with 486 Busy Here
INCIDENT = {"title": "小店区化工厂泄漏", "category": "accident_disaster", "level": "II", "area_code": "140105"}
STATION = "8700"  # our own fax number as station id: a fax back from it is matched to our faxes' incident


@dataclass
class FaxDesk:
    ctx: Context
    http: httpx.AsyncClient
    tokens: dict[str, dict[str, str]]
    telephony: Telephony
    incident_id: str
    document: bytes
    batches: dict[str, list[str]] = field(default_factory=dict)  # case -> fax ids
    events: list[Event] = field(default_factory=list)
    done: dict[str, asyncio.Event] = field(default_factory=dict)  # fax id -> settled
    received: list[dict[str, Any]] = field(default_factory=list)
    submitted_at: float = 0.0
    skipped: list[dict[str, str]] = field(default_factory=list)
    warning_id: str = ""

    async def settled(self, case: str, timeout: float) -> list[dict[str, Any]]:
        ids = self.batches[case]
        await asyncio.wait_for(asyncio.gather(*(self.done.setdefault(i, asyncio.Event()).wait() for i in ids)), timeout)
        return [(await self.http.get(f"/api/v1/faxes/{i}", headers=self.tokens["leader"])).json() for i in ids]

    async def received_on(self, number: str, count: int, timeout: float) -> list[dict[str, Any]]:
        async def inbox() -> list[dict[str, Any]] | None:
            listed = await self.http.get("/api/v1/faxes?direction=in&limit=500", headers=self.tokens["leader"])
            found = [f for f in listed.json() if f["local_number"] == number]
            return found if len(found) >= count else None

        return await until(inbox, timeout=timeout, what=f"{count} faxes received on {number}", interval=0.5)


def fax_settings(asterisk: AsteriskHarness, tmp_path: Path, url: str, **environ: str) -> Settings:
    """A control plane faxing through the session's Asterisk (its spool and fax trunk), our station id 8700."""
    spool = dialplan.Layout.for_settings(asterisk.settings).base / "spool"
    fax = {"SWITCHBOARD_FAX_SPOOL_DIR": str(spool / "fax"), "SWITCHBOARD_FAX_TRUNK": asterisk.fax_trunk}
    return engine_settings(asterisk, tmp_path, url, **fax, **{"SWITCHBOARD_FAX_STATION_ID": STATION} | environ)


def pdf_document(tmp_path: Path, pages: int) -> bytes:
    """A PDF with text, lines and filled shapes on each page (ghostscript's pdfwrite)."""
    body = []
    for page in range(1, pages + 1):
        body.append(
            f"/Helvetica findfont 36 scalefont setfont 72 720 moveto (Switchboard fax test page {page}) show "
            f"4 setlinewidth 72 100 moveto 520 {300 + 40 * page} lineto stroke "
            f"{150 + 50 * page} 450 {40 + 10 * page} 0 360 arc fill "
            f"72 200 {60 * page} 80 rectfill showpage"
        )
    source = tmp_path / f"doc{pages}.ps"
    source.write_text("%!PS\n" + "\n".join(body) + "\n")
    target = tmp_path / f"doc{pages}.pdf"
    subprocess.run(
        ["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pdfwrite", "-sPAPERSIZE=a4",
         f"-sOutputFile={target}", str(source)],
        check=True,
    )  # fmt: skip
    return target.read_bytes()


def scanned_page() -> bytes:
    """A greyscale "scan" with text-like bars, as a PNG."""
    image = Image.new("L", (1240, 1754), 250)
    pixels = np.asarray(image).copy()
    for row in range(200, 1600, 60):
        pixels[row : row + 18, 150 : 150 + (row * 7) % 900 + 100] = 20
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def tiff_pages(path: Path) -> list[np.ndarray]:
    """Black pixels (True) of each page of a bilevel TIFF."""
    with Image.open(path) as image:
        return [np.asarray(frame.convert("L")) < 128 for frame in ImageSequence.Iterator(image)]


def pdf_pages(path: Path, tmp_path: Path) -> list[np.ndarray]:
    """Black pixels of each page of a received fax PDF: each page is one bilevel image, taken out as it is stored
    (poppler's pdfimages; rasterising with pdftoppm would resample it by a fraction of a row)."""
    prefix = tmp_path / f"{path.stem}-page"
    subprocess.run(["pdfimages", "-png", str(path), str(prefix)], check=True)
    pages = []
    for page in sorted(tmp_path.glob(f"{prefix.name}-*.png")):
        with Image.open(page) as image:
            pages.append(np.asarray(image.convert("L")) < 128)
    return pages


async def _post(desk: FaxDesk, data: bytes, name: str = "通知.pdf", **form: str) -> httpx.Response:
    files = {"file": (name, data, "application/pdf")}
    return await desk.http.post("/api/v1/faxes", files=files, data=form, headers=desk.tokens["duty_officer"])


@pytest_asyncio.fixture(scope="module")
async def fax_desk(
    asterisk: AsteriskHarness, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FaxDesk]:
    """Switchboard driving the session's Asterisk, with every fax of the module submitted at once."""
    tmp_path = tmp_path_factory.mktemp("fax")
    url = await fresh_database_url("sqlite", request, tmp_path)
    settings = fax_settings(
        asterisk,
        tmp_path,
        url,
        SWITCHBOARD_FAX_LINES=str(LINES),
        SWITCHBOARD_FAX_MAX_PAGES="5",
        SWITCHBOARD_FAX_MAX_ATTEMPTS="2",
        SWITCHBOARD_FAX_RETRY_SECONDS="1",
        SWITCHBOARD_FAX_RING_SECONDS="4",
        SWITCHBOARD_FAX_HEADER="Switchboard test",
    )
    ctx = Context.from_settings(settings)
    telephony = Telephony(ctx, definition=asterisk.engine.definition)
    app = create_app(ctx, telephony=telephony)
    async with app.router.lifespan_context(app), PhoneProcess() as phone:
        assert telephony.ami is not None
        await telephony.ami.wait_up(15)
        for desk_number, mode in ((NEVER_ANSWERS, "never"), (BUSY, "busy")):
            await register(phone, asterisk, desk_number, mode)
        tokens = headers_for(ctx, await add_users(ctx))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as http:
            incident = await http.post(
                "/api/v1/incidents",
                json=INCIDENT,
                headers=tokens["duty_officer"],
            )
            desk = FaxDesk(ctx, http, tokens, telephony, incident.json()["id"], pdf_document(tmp_path, 2))
            files = {"file": ("contacts.csv", DIRECTORY.encode(), "text/csv")}
            imported = await http.post("/api/v1/directory/import", files=files, headers=tokens["duty_officer"])
            assert imported.json()["created"] == 4, imported.text
            groups = {
                g["name"]: g for g in (await http.get("/api/v1/directory/groups", headers=tokens["leader"])).json()
            }
            group = groups["值班传真组"]
            [wang] = (await http.get("/api/v1/directory/contacts?q=王强", headers=tokens["leader"])).json()

            async def collect(event: Event) -> None:
                desk.events.append(event)
                if event.type in ("fax.sent", "fax.failed") and event.data.get("direction") == "out":
                    desk.done.setdefault(event.data["fax_id"], asyncio.Event()).set()

            ctx.bus.subscribe(collect)
            desk.submitted_at = time.monotonic()
            cases = [("never", NEVER_ANSWERS, {}), ("busy", BUSY, {})]
            cases.append(("t38", asterisk.fax_numbers["t38"], {"cover": "true"}))
            cases.append(("g711", asterisk.fax_numbers["g711"], {}))
            cases += [(f"many{i}", asterisk.fax_numbers["t38"], {}) for i in range(CONCURRENT)]
            for case, number, extra in cases:
                form = {"numbers": number} | extra
                if case == "t38":
                    form |= {"incident_id": desk.incident_id, "subject": "关于危化品泄漏处置的通知"}
                sent = await _post(desk, desk.document, **form)
                assert sent.status_code == 201, sent.text
                desk.batches[case] = [f["id"] for f in sent.json()["faxes"]]
            # A scanned page (PNG) to a group and a contact: each member's fax number once, 李明 has none.
            form = {"group_ids": group["id"], "contact_ids": wang["id"], "numbers": "8700"}
            files = {"file": ("扫描件.png", scanned_page(), "image/png")}
            sent = await http.post("/api/v1/faxes", files=files, data=form, headers=tokens["duty_officer"])
            assert sent.status_code == 201, sent.text
            desk.batches["directory"] = [f["id"] for f in sent.json()["faxes"]]
            desk.skipped = sent.json()["skipped"]
            desk.warning_id = await _issue_by_fax(desk, groups["预警传真组"]["id"])
            yield desk


async def _issue_by_fax(desk: FaxDesk, group_id: str) -> str:
    """An orange warning to 预警传真组 by fax (周平's fax number is the T.38 far end), issued by two people."""
    body = content(group_id, audiences={"groups": [group_id], "channels": ["fax"]})
    drafted = await desk.http.post(
        "/api/v1/warnings", json=body | {"incident_id": desk.incident_id}, headers=desk.tokens["alert_officer"]
    )
    assert drafted.status_code == 201, drafted.text
    warning_id = drafted.json()["id"]
    for who, action in (("alert_officer", "submit"), ("approver", "approve"), ("alert_officer", "issue")):
        done = await desk.http.post(f"/api/v1/warnings/{warning_id}/{action}", headers=desk.tokens[who])
        assert done.status_code == 200, done.text

    async def queued() -> bool:  # its fax job written (before the tests that count the jobs run)
        report = await desk.http.get(f"/api/v1/warnings/{warning_id}/deliveries", headers=desk.tokens["leader"])
        return not {"pending", "sending"} & set(report.json()["counts"].get("fax", {"pending": 1}))

    await until(queued, timeout=30, what="the warning's fax job to be queued")
    return warning_id


@pytest.mark.timeout(60)
async def test_bad_documents_are_refused_and_queue_nothing(fax_desk: FaxDesk, tmp_path: Path) -> None:
    desk = fax_desk
    before = await desk.http.get("/api/v1/faxes?direction=out&limit=500", headers=desk.tokens["leader"])
    files_before = sorted((desk.ctx.settings.var_path / "fax" / "out").iterdir())
    cases = [
        (b"", "empty.pdf", "文件为空"),
        (b"%PDF-1.7\n" + b"\x00garbage" * 200, "broken.pdf", "无法读取文档"),
        (b"PK\x03\x04 a zip file, not a document", "archive.pdf", "不支持的文件类型"),
        (pdf_document(tmp_path, 6), "long.pdf", "超过 5 页"),
    ]
    for data, name, message in cases:
        refused = await _post(desk, data, name=name, numbers="8700")
        assert refused.status_code == 422, (name, refused.text)
        body = refused.json()
        assert body["error"] == "invalid" and body["field"] == "file" and message in body["message"], body
    no_one = await _post(desk, desk.document, numbers="")
    assert no_one.status_code == 422 and no_one.json()["field"] == "numbers"
    bad_number = await _post(desk, desk.document, numbers="12;rm -rf /")
    assert bad_number.status_code == 422 and bad_number.json()["field"] == "numbers"
    unauthenticated = await desk.http.post("/api/v1/faxes", files={"file": ("a.pdf", desk.document)})
    assert unauthenticated.status_code == 401
    after = await desk.http.get("/api/v1/faxes?direction=out&limit=500", headers=desk.tokens["leader"])
    assert len(after.json()) == len(before.json())  # not one half-queued job
    assert sorted((desk.ctx.settings.var_path / "fax" / "out").iterdir()) == files_before


@pytest.mark.timeout(150)
async def test_t38_fax_arrives_with_the_same_pages(fax_desk: FaxDesk, tmp_path: Path) -> None:
    desk = fax_desk
    [sent] = await desk.settled("t38", timeout=140)
    assert sent["state"] == "sent" and sent["result"] == "sent", sent
    assert (sent["mode"], sent["pages"], sent["pages_total"]) == ("T38", 3, 3)  # the cover page and two pages
    assert sent["rate"] and sent["rate"] >= 9600 and sent["ecm"] is True
    progress = [e for e in desk.events if e.type == "fax.progress" and e.data["fax_id"] == sent["id"]]
    assert progress, "no FAXStatus progress from Asterisk"
    assert "正在传送" in {e.data["status_name"] for e in progress}  # in Chinese, for the console
    assert {e.incident_id for e in progress} == {desk.incident_id}  # and tied to the fax's incident
    [received] = [f for f in await desk.received_on("8700", 1 + CONCURRENT, 60) if f["pages"] == 3]
    assert received["state"] == "received" and received["mode"] == "T38"
    assert received["number"] == STATION and received["remote_station"] == STATION
    reference = tiff_pages(desk.telephony.faxes.document_path(await desk.telephony.faxes.get(sent["id"])))
    store = desk.telephony.recordings
    pdf = store.path_of(await store.get(received["recording_id"]))
    assert_same_pages(reference, pdf_pages(pdf, tmp_path))
    # The fax came back from the number this incident's fax went to: it is on the incident's timeline.
    assert received["incident_id"] == desk.incident_id
    timeline = await desk.http.get(f"/api/v1/incidents/{desk.incident_id}/timeline", headers=desk.tokens["leader"])
    kinds = [(e["kind"], e["type"]) for e in timeline.json()["items"]]
    assert ("fax", "fax.sent") in kinds and ("fax", "fax.received") in kinds
    assert any(e.type == "fax.received" and e.data["fax_id"] == received["id"] for e in desk.events)


@pytest.mark.timeout(150)
async def test_g711_fax_arrives_with_the_same_pages(fax_desk: FaxDesk, tmp_path: Path) -> None:
    desk = fax_desk
    [sent] = await desk.settled("g711", timeout=140)
    assert sent["state"] == "sent" and sent["mode"] == "audio" and sent["pages"] == 2, sent
    [received] = await desk.received_on("8701", 1, 60)
    assert received["state"] == "received" and received["mode"] == "audio" and received["pages"] == 2
    reference = tiff_pages(desk.telephony.faxes.document_path(await desk.telephony.faxes.get(sent["id"])))
    store = desk.telephony.recordings
    assert_same_pages(reference, pdf_pages(store.path_of(await store.get(received["recording_id"])), tmp_path))


@pytest.mark.timeout(150)
async def test_eight_faxes_at_once_within_the_line_limit(fax_desk: FaxDesk) -> None:
    desk = fax_desk
    results = []
    for i in range(CONCURRENT):
        results += await desk.settled(f"many{i}", timeout=140)
    assert [f["state"] for f in results] == ["sent"] * CONCURRENT, [(f["result"], f["error"]) for f in results]
    assert all(f["pages"] == 2 for f in results)
    faxes = desk.telephony.faxes
    assert faxes is not None and CONCURRENT <= faxes.peak <= LINES


@pytest.mark.timeout(90)
async def test_far_end_that_never_answers_fails_after_its_retries(fax_desk: FaxDesk) -> None:
    desk = fax_desk
    [fax] = await desk.settled("never", timeout=80)
    assert fax["state"] == "failed" and fax["result"] == "no_answer" and fax["attempts"] == 2, fax
    assert [h["result"] for h in fax["history"]] == ["no_answer", "no_answer"]
    retried = [e for e in desk.events if e.type == "fax.retrying" and e.data["fax_id"] == fax["id"]]
    assert len(retried) == 1


@pytest.mark.timeout(150)
async def test_contacts_and_groups_get_one_fax_per_number(fax_desk: FaxDesk) -> None:
    desk = fax_desk
    faxes = await desk.settled("directory", timeout=140)
    assert sorted((f["number"], f["party_name"]) for f in faxes) == [("8700", "王强"), ("8701", "赵刚")]
    assert desk.skipped == [{"name": "李明", "reason": "没有登记传真号码"}]
    assert [(f["state"], f["pages_total"], f["pages"]) for f in faxes] == [("sent", 1, 1)] * 2, faxes


@pytest.mark.timeout(150)
async def test_a_warning_by_fax_arrives_as_its_page_under_the_colour_band(fax_desk: FaxDesk, tmp_path: Path) -> None:
    """A warning whose audience channel is fax: each member's fax number gets one page (the warning's text under an
    orange band), sent by the fax service; its delivery row is delivered when the fax service says it went."""
    desk = fax_desk
    base = f"/api/v1/warnings/{desk.warning_id}/deliveries"

    async def delivered() -> dict | None:
        report = (await desk.http.get(base, headers=desk.tokens["leader"])).json()
        return report if report["counts"] == {"fax": {"delivered": 1}} else None

    report = await until(delivered, timeout=140, what="the warning's fax to be delivered", interval=0.5)
    [row] = report["items"]
    assert (row["recipient"], row["channel_name"]) == ("8700", "传真")  # 王强's desk shares the fax machine
    assert row["last_error"].startswith("传真已发送：8700，1 页")  # the fax service's own account of it
    fax = await desk.telephony.faxes.get(row["remote_id"])
    assert (fax.state, fax.pages_total, fax.created_by) == ("sent", 1, "warnings")
    sent_page = tiff_pages(desk.telephony.faxes.document_path(fax))
    band, foot = sent_page[0][20:240, :], sent_page[0][-400:-200, :]
    assert band.mean() > 0.2 > foot.mean()  # the orange band, dithered to dots; the page's foot is blank
    # 8700 also got the scanned page (one page too): the warning's is the one under a band (below the fax header).
    store = desk.telephony.recordings
    one_page = [f for f in await desk.received_on("8700", 3 + CONCURRENT, 60) if f["pages"] == 1]
    pages = [pdf_pages(store.path_of(await store.get(f["recording_id"])), tmp_path) for f in one_page]
    [received] = [p for p in pages if p[0][MAX_HEADER_ROWS + 20 : MAX_HEADER_ROWS + 200, :].mean() > 0.2]
    assert_same_pages(sent_page, received)


@pytest.mark.timeout(60)
async def test_busy_far_end_is_retried_then_fails(fax_desk: FaxDesk) -> None:
    [fax] = await fax_desk.settled("busy", timeout=50)
    assert (fax["state"], fax["result"], fax["attempts"]) == ("failed", "busy", 2), fax["history"]
    assert "占线" in next(
        e.data["summary"] for e in fax_desk.events if e.type == "fax.failed" and e.data["fax_id"] == fax["id"]
    )
    assert fax["error"].startswith("呼叫未接通：占线"), fax["error"]  # in Chinese, the codes kept for diagnosis


def test_a_failed_transmission_keeps_faxerror_whole() -> None:
    """The dialplan sends FAXERROR base64-encoded (it used to be filtered to capitals: "T.30 ..." became "T")."""
    said = "Far end cannot receive at the resolution of the image"
    report = {"Status": "FAILED", "Pages": "1", "ErrorB64": base64.b64encode(said.encode()).decode(), "Cause": "16"}
    outcome = report_outcome(report)  # type: ignore[arg-type]
    assert outcome.result == "failed" and outcome.pages == 1
    assert outcome.error == f"传真传送失败：失败，挂机原因码 16（FAXERROR：{said}）"


def assert_same_pages(sent: list[np.ndarray], received: list[np.ndarray]) -> None:
    """Same page count and width; each received page is the sent one with the header line added on top (spandsp
    prepends it, so the page is that many rows taller), and below it the same pixels."""
    assert len(received) == len(sent), (len(sent), len(received))
    for number, (a, b) in enumerate(zip(sent, received, strict=True), 1):
        header = b.shape[0] - a.shape[0]
        assert a.shape[1] == b.shape[1] == 1728 and 0 < header <= MAX_HEADER_ROWS, (number, a.shape, b.shape)
        assert np.count_nonzero(b[:header]) > 100, number  # the header line was printed
        assert np.count_nonzero(a) > 1000, number  # the page has content to compare
        differing = np.count_nonzero(a != b[header:])
        assert differing <= np.count_nonzero(a) // 1000, (number, differing)  # T.4 with ECM: in practice none
