"""The comparison for bench/video_bench.py: a small SFU written with aiortc alone. Each browser publishes its
camera to it and receives every other site through it (aiortc's MediaRelay; aiortc decodes each incoming stream
and encodes it again for every receiver). Serves its own page: `python -m bench.aiortc_relay HOST PORT`;
one process per room."""

import asyncio
import sys

import uvicorn
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

PAGE = """<!doctype html><html><body><div id="state">starting</div><script>
const id = Math.random().toString(36).slice(2);
const wait = (pc) => new Promise((ok) => { if (pc.iceGatheringState === "complete") return ok();
  pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && ok(); setTimeout(ok, 3000); });
async function post(path, body) { return (await fetch(path, {method: "POST", body: JSON.stringify(body)})).json(); }
let rx = null;
async function run(sites) {
  const stream = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 480}, audio: false});
  const tx = new RTCPeerConnection();
  tx.addTransceiver(stream.getVideoTracks()[0], {direction: "sendonly"});
  await tx.setLocalDescription(await tx.createOffer()); await wait(tx);
  await tx.setRemoteDescription(await post("/publish", {id, sdp: tx.localDescription.sdp}));
  while ((await (await fetch("/peers")).json()).count < sites) await new Promise((r) => setTimeout(r, 200));
  rx = new RTCPeerConnection();
  for (let i = 1; i < sites; i++) rx.addTransceiver("video", {direction: "recvonly"});
  await rx.setLocalDescription(await rx.createOffer()); await wait(rx);
  await rx.setRemoteDescription(await post("/subscribe", {id, sdp: rx.localDescription.sdp}));
  document.getElementById("state").textContent = "joined";
}
window.consultStats = async () => { const out = {}; if (!rx) return out; let i = 0;
  (await rx.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") out["r" + (i++)] = s.framesDecoded || 0; });
  return out; };
window.run = run;
</script></body></html>"""

relay = MediaRelay()
tracks: dict[str, object] = {}
connections: set[RTCPeerConnection] = set()


async def page(_: Request) -> HTMLResponse:
    return HTMLResponse(PAGE)


async def peers(_: Request) -> JSONResponse:
    return JSONResponse({"count": len(tracks)})


async def _answer(pc: RTCPeerConnection) -> JSONResponse:
    await pc.setLocalDescription(await pc.createAnswer())
    return JSONResponse({"type": "answer", "sdp": pc.localDescription.sdp})


async def publish(request: Request) -> JSONResponse:
    body = await request.json()
    pc = RTCPeerConnection()
    connections.add(pc)
    pc.on("track", lambda track: tracks.__setitem__(body["id"], track))
    await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], "offer"))
    return await _answer(pc)


async def subscribe(request: Request) -> JSONResponse:
    body = await request.json()
    pc = RTCPeerConnection()
    connections.add(pc)
    await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], "offer"))
    for peer, track in list(tracks.items()):
        if peer != body["id"]:
            pc.addTrack(relay.subscribe(track, buffered=False))  # type: ignore[arg-type]
    return await _answer(pc)


app = Starlette(
    routes=[
        Route("/", page),
        Route("/peers", peers),
        Route("/publish", publish, methods=["POST"]),
        Route("/subscribe", subscribe, methods=["POST"]),
    ]
)

if __name__ == "__main__":
    config = uvicorn.Config(app, host=sys.argv[1], port=int(sys.argv[2]), log_level="warning")
    asyncio.run(uvicorn.Server(config).serve())
