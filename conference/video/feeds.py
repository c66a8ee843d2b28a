"""Camera feeds: an RTSP camera published into a consultation room as one more site, without decoding.

Each feed runs in a process of its own (`python -m conference.video.feeds ...`), so the camera's packets never
pass through the control plane's event loop. The process has a Janus session of its own on Janus's Unix-socket
API (conference.video.client): it joins the room as a publisher with its invite's ACL token and sends the
camera's H.264 as it comes (aiortc `MediaPlayer(url, decode=False)`). When the camera drops (its track ends, or
the peer connection fails) or Janus hangs up, it leaves and joins again with backoff, for as long as it runs; the
control plane restarts the process should it die.
"""

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conference.video.client import JanusClient
from conference.video.engine import in_netns

log = logging.getLogger(__name__)

RESTART_SECONDS = (0.5, 10.0)


class FeedProcess:
    """The control plane's handle on one media process (a camera feed, `conference.video.ingest`): started,
    restarted when it exits, stopped. `pass_fds` are inherited by every run (a socket whose port must outlive a
    restart); `report`, when given, hears each JSON line the process prints on stdout."""

    def __init__(
        self, argv: list[str], secrets_env: dict[str, str], netns: str = "", *,
        module: str = "conference.video.feeds", pass_fds: tuple[int, ...] = (),
        report: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:  # fmt: skip
        self.argv = in_netns(netns, [sys.executable, "-m", module, *argv])
        self.secrets_env = secrets_env
        self.pass_fds = pass_fds
        self.report = report
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep_running(), name="camera-feed")

    async def _keep_running(self) -> None:
        delay = RESTART_SECONDS[0]
        while True:
            env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)} | self.secrets_env
            self.process = await asyncio.create_subprocess_exec(
                *self.argv, stdin=asyncio.subprocess.DEVNULL, env=env, start_new_session=True,
                pass_fds=self.pass_fds, stdout=asyncio.subprocess.PIPE if self.report else None,
            )  # fmt: skip
            if self.report and self.process.stdout:
                while line := await self.process.stdout.readline():
                    with contextlib.suppress(ValueError):
                        self.report(json.loads(line))
            code = await self.process.wait()
            log.warning("camera feed process exited (%s); restarting in %.1f s", code, delay)
            self.restarts += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_SECONDS[1])

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.process and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, 15)
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, 9)
                await self.process.wait()


# The join token, the room PIN and the camera URL (often with its password) go to the feed process in its
# environment: a command line is shown to every user of the host by `ps`, an environment only to its owner.
SECRETS = {"token": "SB_FEED_TOKEN", "pin": "SB_FEED_PIN", "rtsp": "SB_FEED_RTSP"}


def arguments(
    api_socket: Path, room: int, participant_id: int, display: str, token: str, pin: str, rtsp_url: str
) -> tuple[list[str], dict[str, str]]:
    """The feed process's command-line arguments and its secrets (for its environment)."""
    argv = ["--janus", str(api_socket), "--room", str(room), "--id", str(participant_id), "--display", display]
    return argv, {SECRETS["token"]: token, SECRETS["pin"]: pin, SECRETS["rtsp"]: rtsp_url}


# The feed process -------------------------------------------------------------------------------------------


async def publish_once(args: argparse.Namespace) -> None:
    """Join, publish until the camera or the connection drops, leave."""
    from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
    from aiortc.contrib.media import MediaPlayer

    player = MediaPlayer(args.rtsp, decode=False, options={"rtsp_transport": "tcp", "stimeout": "5000000"})
    if player.video is None:
        raise RuntimeError("摄像头没有视频流")
    pc = RTCPeerConnection()
    ended = asyncio.Event()
    player.video.on("ended", ended.set)

    @pc.on("connectionstatechange")
    def _state() -> None:
        if pc.connectionState in ("failed", "closed"):
            ended.set()

    janus: JanusClient | None = None
    try:
        janus = await JanusClient.open(Path(args.janus))
        handle = await janus.attach()
        join = {"request": "join", "ptype": "publisher", "room": args.room, "id": args.id, "display": args.display}
        join |= {"token": args.token} | ({"pin": args.pin} if args.pin else {})
        joined = await janus.message(handle, join)
        if joined.data.get("videoroom") != "joined":
            raise RuntimeError(f"加入失败：{joined.error or joined.data}")
        transceiver = pc.addTransceiver(player.video, direction="sendonly")
        h264 = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/H264"]
        transceiver.setCodecPreferences(h264)
        await pc.setLocalDescription(await pc.createOffer())
        offer = {"type": "offer", "sdp": pc.localDescription.sdp}
        answer = await janus.message(handle, {"request": "configure", "audio": False, "video": True}, offer)
        if answer.jsep is None:
            raise RuntimeError(f"发布失败：{answer.error or answer.data}")
        await pc.setRemoteDescription(RTCSessionDescription(answer.jsep["sdp"], "answer"))
        log.info("camera feed %s published", args.display)
        watches = [asyncio.create_task(ended.wait()), asyncio.create_task(_until_hung_up(janus))]
        await asyncio.wait(watches, return_when=asyncio.FIRST_COMPLETED)
        for watch in watches:
            watch.cancel()
        log.warning("camera feed %s dropped", args.display)
    finally:
        await pc.close()
        if janus is not None:
            await janus.close()
        if player.video:
            player.video.stop()


async def _until_hung_up(janus: JanusClient) -> None:
    """Take the room's events (nobody else does) until Janus hangs up on us or the session ends."""
    while (event := await janus.next_event()) is not None:
        if event.get("janus") == "hangup":
            return


async def main(args: argparse.Namespace) -> None:
    delay = RESTART_SECONDS[0]
    while True:
        try:
            await publish_once(args)
            delay = RESTART_SECONDS[0]
        except Exception as exc:  # noqa: BLE001 - a camera or a Janus refusal: both mean try again later
            log.warning("camera feed %s: %s; retrying in %.1f s", args.display, exc, delay)
            delay = min(delay * 2, RESTART_SECONDS[1])
        await asyncio.sleep(delay)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Publish an RTSP camera into a Janus VideoRoom without decoding")
    parser.add_argument("--janus", required=True, help="Janus's Unix-socket API (pfunix, SOCK_SEQPACKET)")
    parser.add_argument("--display", required=True)
    for name, variable in SECRETS.items():
        parser.add_argument(f"--{name}", default=os.environ.get(variable, ""), help=f"default: ${variable}")
    parser.add_argument("--room", type=int, required=True)
    parser.add_argument("--id", type=int, required=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s feed %(levelname)s %(message)s")
    for noisy in ("aioice", "aiortc", "libav"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    parsed = parser.parse_args()
    if not parsed.token or not parsed.rtsp:
        parser.error(f"--token and --rtsp (or ${SECRETS['token']} and ${SECRETS['rtsp']}) are required")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parsed))
