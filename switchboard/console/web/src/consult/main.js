// The join page: the device check, then our camera published into the room and one subscription per site, all
// through janus.js and the switchboard's relay; moderators also mute, remove (after a confirmation), lock and record.
// What the page plays is the room's AudioBridge mix (the other sites and the phones); our microphone goes into it.
// Sites' audio also reaches the VideoRoom (for the recordings and the active speaker) but is not played from there:
// every site would be heard twice.
import { DeviceCheck } from "./devices.js";
import { Handle, connect } from "./janus.js";
import "./consult.css";

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token") || "";
const cid = location.pathname.split("/").filter(Boolean).pop();
const tiles = new Map(); // participant id -> {el, video, stream, handle, name, local}
const devices = new DeviceCheck({
  camera: $("camera"), microphone: $("microphone"), speaker: $("speaker"), preview: $("preview"), level: $("level"),
  test: $("test-sound"), onError: (err) => notice(`设备不可用：${err.message}`),
});
let janus = null, ticket = null, publisher = null, localStream = null, cameraTrack = null, left = false;
let hearing = null; // the AudioBridge handle: our microphone in, the room's mix out
let speaker = null; // the participant id of the active speaker
let checked = null; // the device check's first capture: joining waits for it

function say(text) { $("status").textContent = text; }
function notice(text) { $("notice").textContent = text; $("notice").classList.remove("hidden"); }
const reason = (err) => String(err.message || err).replace(/^\d+ /, ""); // janus.js puts the code first

async function control(method, path, body) {
  const res = await fetch(path, {
    method, headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = res.status === 204 ? {} : await res.json();
  if (!res.ok) throw new Error(data.message || res.statusText);
  return data;
}

function siteName(id, display) { return ticket.sites[String(id)] || display || String(id); }

// Layout ----------------------------------------------------------------------------------------------------------

function arrange() {
  const grid = $("grid");
  grid.style.setProperty("--cols", String(Math.max(1, Math.ceil(Math.sqrt(tiles.size)))));
  grid.style.setProperty("--others", String(Math.max(1, tiles.size - 1)));
  const remote = [...tiles.keys()].filter((id) => !tiles.get(id).local);
  const main = tiles.has(speaker) && !tiles.get(speaker).local ? speaker : (remote[0] ?? ticket.participant_id);
  for (const [id, entry] of tiles) entry.el.classList.toggle("main", id === main);
}

function tile(id, name, local) {
  if (tiles.has(id)) return tiles.get(id);
  const el = document.createElement("div");
  el.className = "tile"; el.dataset.participant = id; el.dataset.site = name;
  const video = document.createElement("video");
  video.autoplay = true; video.playsInline = true; video.muted = true; // heard through the room's mix
  const label = document.createElement("div");
  label.className = "label";
  const span = document.createElement("span");
  span.className = "name"; span.textContent = local ? `${name}（本地）` : name;
  label.appendChild(span);
  if (ticket.moderator && !local) {
    const mute = document.createElement("button");
    mute.className = "mute"; mute.textContent = "静音";
    mute.onclick = () => toggleMute(id, mute);
    const kick = document.createElement("button");
    kick.className = "remove"; kick.textContent = "移出";
    kick.onclick = () => confirmRemove(id, name);
    label.append(mute, kick);
  }
  el.append(video, label);
  $("grid").appendChild(el);
  const entry = { el, video, stream: new MediaStream(), handle: null, name, local };
  video.srcObject = entry.stream;
  tiles.set(id, entry);
  arrange();
  return entry;
}

function drop(id) {
  const entry = tiles.get(id);
  if (!entry || entry.local) return;
  if (entry.handle && !left) entry.handle.detach();
  entry.el.remove();
  tiles.delete(id);
  arrange();
}

// Moderation ------------------------------------------------------------------------------------------------------

async function inviteOf(id) {
  const who = (await control("GET", `/api/v1/consultations/${cid}/participants`)).find((p) => p.participant_id === id);
  if (!who || !who.invite_id) throw new Error("找不到该参会方");
  return who.invite_id;
}

async function toggleMute(id, button) {
  try {
    const muted = !button.classList.contains("off");
    await control("POST", `/api/v1/consultations/${cid}/participants/${await inviteOf(id)}/mute`, { on: muted });
    button.classList.toggle("off", muted); button.textContent = muted ? "取消静音" : "静音";
  } catch (err) { notice(err.message); }
}

function confirmRemove(id, name) {
  const dialog = $("confirm-remove");
  $("confirm-text").textContent = `确定将“${name}”移出本次会商？移出后该参会方的链接随即失效。`;
  $("confirm-no").onclick = () => dialog.close();
  $("confirm-yes").onclick = async () => {
    dialog.close();
    try { await control("DELETE", `/api/v1/consultations/${cid}/participants/${await inviteOf(id)}`); }
    catch (err) { notice(err.message); }
  };
  dialog.showModal();
}

function showRecording(on) {
  $("recording-notice").classList.toggle("hidden", !on);
  document.body.dataset.recording = on ? "on" : "off";
  const button = $("record");
  button.classList.toggle("active", on); button.textContent = on ? "停止录像" : "开始录像";
}

// The room --------------------------------------------------------------------------------------------------------

async function subscribe(feed, display) {
  if (tiles.has(feed) || feed === ticket.participant_id || left) return;
  const entry = tile(feed, siteName(feed, display), false);
  const handle = new Handle(janus, {
    onTrack: (track, on) => {
      if (on && track.readyState === "live") entry.stream.addTrack(track); else entry.stream.removeTrack(track);
      entry.video.play().catch(() => {});
    },
  });
  entry.handle = handle;
  try {
    await handle.open();
    const { jsep } = await handle.request(
      { request: "join", ptype: "subscriber", streams: [{ feed }] }, undefined, (d) => d.videoroom === "attached");
    const answer = await handle.answer(jsep);
    await handle.request({ request: "start" }, answer, (d) => d.started === "ok");
  } catch (err) {
    drop(feed);
    throw err;
  }
}

function onRoomEvent(data) {
  for (const p of data.publishers || []) subscribe(p.id, p.display).catch((err) => notice(reason(err)));
  for (const gone of [data.unpublished, data.leaving, data.kicked]) if (typeof gone === "number") drop(gone);
  if (data.videoroom === "talking" || data.videoroom === "stopped-talking") {
    const entry = tiles.get(data.id);
    const on = data.videoroom === "talking";
    if (entry) entry.el.classList.toggle("speaking", on);
    if (entry && on) { document.body.dataset.speaker = entry.name; speaker = data.id; arrange(); }
  }
  if (typeof data.recording === "boolean") showRecording(data.recording);
  if (data.videoroom === "destroyed") cutOff("本次会商已结束");
  if (data.leaving === "ok" && data.reason === "kicked") cutOff("您已被主持人移出本次会商");
}

function onClosed(code, why) {
  if (left) return;
  if (code === 4403) { cutOff(why); return; }
  left = true;
  document.body.dataset.state = "disconnected";
  say("已断开");
  notice(code === 4503 || !why ? why || "与会商服务器的连接中断" : `与会商服务器的连接中断：${why}`);
}

// The control plane has cut this site off (removed, or the consultation ended); Janus has already ended its media.
function cutOff(message) {
  if (left) return;
  left = true;
  for (const entry of tiles.values()) entry.el.remove();
  tiles.clear();
  if (janus) janus.destroy({ notifyDestroyed: false });
  if (localStream) localStream.getTracks().forEach((t) => t.stop());
  document.body.dataset.state = "removed";
  say("已断开");
  notice(message);
}

async function publish() {
  await checked;
  localStream = devices.take();
  if (!localStream) throw new Error("没有可用的摄像头或麦克风");
  cameraTrack = localStream.getVideoTracks()[0];
  const me = tile(ticket.participant_id, ticket.site, true);
  localStream.getTracks().forEach((t) => me.stream.addTrack(t));
  // Audio first: its mid (0) is what moderators mute.
  const offer = await publisher.offer([
    { type: "audio", capture: localStream.getAudioTracks()[0], recv: false },
    { type: "video", capture: cameraTrack, recv: false },
  ]);
  const { jsep } = await publisher.request(
    { request: "configure", audio: true, video: true }, offer, (d) => d.configured === "ok");
  await publisher.accept(jsep);
}

async function hear() {
  hearing = await new Handle(janus, { plugin: "janus.plugin.audiobridge", onTrack: playMix }).open();
  await hearing.request({ request: "join" }, undefined, (d) => d.audiobridge === "joined");
  const offer = await hearing.offer([{ type: "audio", capture: localStream.getAudioTracks()[0], recv: true }]);
  const { jsep } = await hearing.request({ request: "configure" }, offer, (d) => d.result === "ok");
  await hearing.accept(jsep);
}

function playMix(track, on) {
  if (!on || track.kind !== "audio") return;
  const mix = $("room-mix");
  mix.srcObject = new MediaStream([track]);
  if (devices.speaker && mix.setSinkId) mix.setSinkId(devices.speaker).catch(() => {});
}

async function join() {
  $("join-button").disabled = true;
  let joined;
  try {
    if (!janus) janus = await connect(cid, token, onClosed);
    if (!publisher) publisher = await new Handle(janus, { onEvent: onRoomEvent }).open();
    joined = (await publisher.request(
      { request: "join", ptype: "publisher", pin: $("pin").value.trim() }, undefined, (d) => d.videoroom === "joined",
    )).data;
  } catch (err) {
    notice(reason(err));
    $("join-button").disabled = false;
    return;
  }
  try {
    $("join").classList.add("hidden");
    ["toggle-camera", "toggle-mic", "share-screen", "layout", "leave"].forEach((id) => $(id).classList.remove("hidden"));
    if (ticket.moderator) $("moderation").classList.remove("hidden");
    $("notice").classList.add("hidden");
    showRecording(Boolean(joined.recording));
    await publish();
    hear().catch((err) => notice(`无法接入会商音频：${reason(err)}`)); // beside the subscriptions, not before them
    for (const p of joined.publishers || []) subscribe(p.id, p.display).catch((err) => notice(reason(err)));
    document.body.dataset.state = "joined";
    say("已加入会商");
  } catch (err) {
    notice(`加入失败：${reason(err)}`);
  }
}

function toggle(button, kind, onText, offText) {
  const track = kind === "video" ? cameraTrack : localStream.getAudioTracks()[0];
  track.enabled = !track.enabled;
  button.classList.toggle("off", !track.enabled);
  button.textContent = track.enabled ? onText : offText;
}

async function shareScreen() {
  const button = $("share-screen");
  const sender = publisher.pc.getSenders().find((s) => s.track && s.track.kind === "video");
  if (button.classList.contains("active")) {
    await sender.replaceTrack(cameraTrack);
    button.classList.remove("active"); button.textContent = "共享屏幕";
    return;
  }
  try {
    const screen = await navigator.mediaDevices.getDisplayMedia({ video: true });
    const track = screen.getVideoTracks()[0];
    track.onended = () => { if (button.classList.contains("active")) shareScreen(); };
    await sender.replaceTrack(track);
    button.classList.add("active"); button.textContent = "停止共享";
  } catch (err) { notice(`无法共享屏幕：${err.message}`); }
}

function switchLayout() {
  const speakerView = $("grid").dataset.layout !== "speaker";
  $("grid").dataset.layout = speakerView ? "speaker" : "grid";
  $("layout").textContent = speakerView ? "宫格视图" : "演讲者视图";
  arrange();
}

async function moderatorSwitch(button, path, activeText, idleText) {
  const on = !button.classList.contains("active");
  try {
    await control("POST", `/api/v1/consultations/${cid}/${path}`, { on });
    button.classList.toggle("active", on); button.textContent = on ? activeText : idleText;
  } catch (err) { notice(err.message); }
}

async function start() {
  try {
    ticket = await control("POST", `/consult/${cid}/session`);
  } catch (err) {
    document.body.dataset.state = "refused"; say("无法加入"); notice(err.message); return;
  }
  $("title").textContent = ticket.title;
  $("me").textContent = ticket.site + (ticket.person ? ` · ${ticket.person}` : "") + (ticket.moderator ? "（主持人）" : "");
  $("join-site").textContent = `以“${ticket.site}”身份加入会商`;
  if (ticket.pin_required) $("pin-row").classList.remove("hidden");
  showRecording(ticket.recording);
  $("join").classList.remove("hidden");
  say("未加入");
  $("join-button").onclick = join;
  $("toggle-camera").onclick = (e) => toggle(e.target, "video", "关闭摄像头", "打开摄像头");
  $("toggle-mic").onclick = (e) => toggle(e.target, "audio", "关闭麦克风", "打开麦克风");
  $("share-screen").onclick = shareScreen;
  $("layout").onclick = switchLayout;
  $("leave").onclick = () => { left = true; janus.destroy(); location.reload(); };
  $("lock").onclick = (e) => moderatorSwitch(e.target, "lock", "解除锁定", "锁定会商");
  $("record").onclick = (e) => moderatorSwitch(e.target, "recording", "停止录像", "开始录像");
  checked = devices.start().catch((err) => notice(`无法使用摄像头或麦克风：${err.message}`));
}

// For monitoring and tests: frames decoded per remote site.
window.consultStats = async () => {
  const result = {};
  for (const entry of tiles.values()) {
    if (!entry.handle || !entry.handle.pc) continue;
    let frames = 0;
    (await entry.handle.pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
    });
    result[entry.name] = frames;
  }
  return result;
};

start();
