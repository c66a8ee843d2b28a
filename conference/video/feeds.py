"""Camera feeds: an RTSP camera published into a consultation room as one more site, without decoding.

Each feed runs in a process of its own (`python -m conference.video.feeds ...`), so the camera's packets never
pass through the control plane's event loop. The process is a Janus client like the join page: it joins the
room as a publisher over Janus's HTTP API and sends the camera's H.264 as it comes (aiortc
`MediaPlayer(url, decode=False)`). When the camera drops (its track ends, or the peer connection fails) it leaves
and joins again with backoff, for as long as it runs; the control plane restarts the process should it die.
"""

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import sys
from typing import Any

from conference.video.engine import in_netns

log = logging.getLogger(__name__)

RESTART_SECONDS = (0.5, 10.0)


class FeedProcess:
    """The control plane's handle on one feed process: started, restarted when it exits, stopped."""

    def __init__(self, argv: list[str], secrets_env: dict[str, str], netns: str = "") -> None:
        self.argv = in_netns(netns, [sys.executable, "-m", "conference.video.feeds", *argv])
        self.secrets_env = secrets_env
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
                *self.argv, stdin=asyncio.subprocess.DEVNULL, env=env, start_new_session=True
            )
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
    janus_url: str, room: int, participant_id: int, display: str, token: str, pin: str, rtsp_url: str
) -> tuple[list[str], dict[str, str]]:
    """The feed process's command-line arguments and its secrets (for its environment)."""
    argv = ["--janus", janus_url, "--room", str(room), "--id", str(participant_id), "--display", display]
    return argv, {SECRETS["token"]: token, SECRETS["pin"]: pin, SECRETS["rtsp"]: rtsp_url}


# The feed process -------------------------------------------------------------------------------------------


class JanusHttp:
    """A minimal Janus HTTP API client: one session, one handle, events by long poll."""

    def __init__(self, url: str) -> None:
        import httpx

        self.url = url.rstrip("/")
        self.http = httpx.AsyncClient(timeout=40)
        self.session = self.handle = 0
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._poller: asyncio.Task[None] | None = None

    async def _post(self, path: str, message: dict[str, Any]) -> dict[str, Any]:
        reply = (await self.http.post(self.url + path, json={"transaction": secrets.token_hex(6), **message})).json()
        if reply.get("janus") == "error":
            raise RuntimeError(f"Janus: {reply['error']}")
        return reply

    async def open(self) -> None:
        self.session = (await self._post("", {"janus": "create"}))["data"]["id"]
        self._poller = asyncio.create_task(self._poll())
        attached = await self._post(f"/{self.session}", {"janus": "attach", "plugin": "janus.plugin.videoroom"})
        self.handle = attached["data"]["id"]

    async def _poll(self) -> None:
        while True:
            reply = (await self.http.get(f"{self.url}/{self.session}?maxev=10")).json()
            for event in reply if isinstance(reply, list) else [reply]:
                if event.get("janus") != "keepalive":
                    await self.events.put(event)

    async def send(self, body: dict[str, Any], jsep: dict[str, Any] | None = None) -> dict[str, Any]:
        """A message to the handle; returns the plugin's event answering it."""
        message: dict[str, Any] = {"janus": "message", "body": body} | ({"jsep": jsep} if jsep else {})
        await self._post(f"/{self.session}/{self.handle}", message)
        while True:
            event = await self.events.get()
            if event.get("janus") == "event":
                return event
            if event.get("janus") in ("hangup", "detached"):
                raise RuntimeError(f"Janus: {event['janus']}")

    async def close(self) -> None:
        if self._poller:
            self._poller.cancel()
        with contextlib.suppress(Exception):
            await self._post(f"/{self.session}", {"janus": "destroy"})
        await self.http.aclose()


async def publish_once(args: argparse.Namespace) -> None:
    """Join, publish until the camera or the connection drops, leave."""
    from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
    from aiortc.contrib.media import MediaPlayer

    player = MediaPlayer(args.rtsp, decode=False, options={"rtsp_transport": "tcp", "stimeout": "5000000"})
    if player.video is None:
        raise RuntimeError("摄像头没有视频流")
    janus = JanusHttp(args.janus)
    pc = RTCPeerConnection()
    ended = asyncio.Event()
    player.video.on("ended", ended.set)

    @pc.on("connectionstatechange")
    def _state() -> None:
        if pc.connectionState in ("failed", "closed"):
            ended.set()

    try:
        await janus.open()
        join = {"request": "join", "ptype": "publisher", "room": args.room, "id": args.id, "display": args.display}
        join |= {"token": args.token} | ({"pin": args.pin} if args.pin else {})
        joined = await janus.send(join)
        data = joined["plugindata"]["data"]
        if data.get("videoroom") != "joined":
            raise RuntimeError(f"加入失败：{data.get('error', data)}")
        transceiver = pc.addTransceiver(player.video, direction="sendonly")
        h264 = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/H264"]
        transceiver.setCodecPreferences(h264)
        await pc.setLocalDescription(await pc.createOffer())
        offer = {"type": "offer", "sdp": pc.localDescription.sdp}
        answer = await janus.send({"request": "configure", "audio": False, "video": True}, offer)
        await pc.setRemoteDescription(RTCSessionDescription(answer["jsep"]["sdp"], "answer"))
        log.info("camera feed %s published", args.display)
        await ended.wait()
        log.warning("camera feed %s dropped", args.display)
    finally:
        await pc.close()
        await janus.close()
        if player.video:
            player.video.stop()


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
    for name in ("janus", "display"):
        parser.add_argument(f"--{name}", required=True)
    for name, variable in SECRETS.items():
        parser.add_argument(f"--{name}", default=os.environ.get(variable, ""), help=f"default: ${variable}")
    parser.add_argument("--room", type=int, required=True)
    parser.add_argument("--id", type=int, required=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s feed %(levelname)s %(message)s")
    for noisy in ("httpx", "aioice", "aiortc", "libav"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    parsed = parser.parse_args()
    if not parsed.token or not parsed.rtsp:
        parser.error(f"--token and --rtsp (or ${SECRETS['token']} and ${SECRETS['rtsp']}) are required")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parsed))
