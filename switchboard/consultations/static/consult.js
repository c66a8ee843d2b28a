// The join page: its camera published into the room and one subscription per site, signalled through the switchboard.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const token = params.get("token") || "";
  const cid = location.pathname.split("/").filter(Boolean).pop();
  const tiles = new Map(); // participant id -> {el, video, stream, pc, subscribed}
  let relay = null, ticket = null, pub = null, localStream = null, cameraTrack = null, left = false;

  function say(text) { $("status").textContent = text; }
  function notice(text) { $("notice").textContent = text; $("notice").classList.remove("hidden"); }

  async function control(method, path, body) {
    const res = await fetch(path, {
      method, headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = res.status === 204 ? {} : await res.json();
    if (!res.ok) throw new Error(data.message || res.statusText);
    return data;
  }

  // The page's signalling goes through the switchboard (never to Janus itself): requests answered by id, room
  // events pushed; the server closes the socket with code 4403 and the reason when it cuts this site off.
  class Relay {
    constructor(onEvent, onEnd) { this.next = 1; this.waiting = new Map(); this.onEvent = onEvent; this.onEnd = onEnd; }
    open() {
      return new Promise((resolve, reject) => {
        const scheme = location.protocol === "https:" ? "wss" : "ws";
        this.ws = new WebSocket(`${scheme}://${location.host}/consult/${cid}/signal`);
        this.ws.onopen = () => this.ask("hello", { token }).then(resolve, reject);
        this.ws.onmessage = (m) => {
          const msg = JSON.parse(m.data);
          if (msg.event) { this.onEvent(msg); return; }
          const waiting = this.waiting.get(msg.id);
          if (!waiting) return;
          this.waiting.delete(msg.id);
          if (msg.ok) waiting.resolve(msg); else waiting.reject(new Error(msg.message));
        };
        this.ws.onclose = (e) => {
          const reason = e.reason || "与会商服务器的连接中断";
          for (const w of this.waiting.values()) w.reject(new Error(reason));
          this.waiting.clear();
          reject(new Error(reason));
          this.onEnd(e.code, reason);
        };
      });
    }
    ask(op, fields) {
      const id = this.next++;
      const answered = new Promise((resolve, reject) => this.waiting.set(id, { resolve, reject }));
      this.ws.send(JSON.stringify({ id, op, ...fields }));
      return answered;
    }
    close() { if (this.ws) this.ws.close(1000); }
  }

  function iceComplete(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      pc.addEventListener("icegatheringstatechange", () => { if (pc.iceGatheringState === "complete") resolve(); });
      setTimeout(resolve, 3000);
    });
  }

  function siteName(id, display) {
    const known = ticket.sites[String(id)];
    return known || display || String(id);
  }

  function tile(id, name, local) {
    if (tiles.has(id)) return tiles.get(id);
    const el = document.createElement("div");
    el.className = "tile"; el.dataset.participant = id; el.dataset.site = name;
    const video = document.createElement("video");
    video.autoplay = true; video.playsInline = true; video.muted = !!local;
    const label = document.createElement("div");
    label.className = "label";
    const span = document.createElement("span");
    span.className = "name"; span.textContent = local ? `${name}（本地）` : name;
    label.appendChild(span);
    if (ticket.moderator && !local) {
      const mute = document.createElement("button");
      mute.className = "mute"; mute.textContent = "静音";
      mute.onclick = () => moderate(id, "mute", mute);
      const kick = document.createElement("button");
      kick.className = "remove"; kick.textContent = "移出";
      kick.onclick = () => moderate(id, "remove", kick);
      label.append(mute, kick);
    }
    el.append(video, label);
    $("grid").appendChild(el);
    const entry = { el, video, stream: new MediaStream(), pc: null, subscribed: false, name };
    video.srcObject = entry.stream;
    tiles.set(id, entry);
    return entry;
  }

  function drop(id) {
    const entry = tiles.get(id);
    if (!entry || id === ticket.participant_id) return;
    if (entry.pc) entry.pc.close();
    if (entry.subscribed && !left) relay.ask("unsubscribe", { feed: id }).catch(() => {});
    entry.el.remove();
    tiles.delete(id);
  }

  async function moderate(id, action, button) {
    try {
      const who = (await control("GET", `/api/v1/consultations/${cid}/participants`)).find((p) => p.participant_id === id);
      if (!who || !who.invite_id) throw new Error("找不到该参会方");
      if (action === "remove") {
        await control("DELETE", `/api/v1/consultations/${cid}/participants/${who.invite_id}`);
      } else {
        const muted = !button.classList.contains("off");
        await control("POST", `/api/v1/consultations/${cid}/participants/${who.invite_id}/mute`, { on: muted });
        button.classList.toggle("off", muted); button.textContent = muted ? "取消静音" : "静音";
      }
    } catch (err) { notice(err.message); }
  }

  async function subscribe(feed, display) {
    if (tiles.has(feed) || feed === ticket.participant_id) return;
    const entry = tile(feed, siteName(feed, display), false);
    let offer;
    try { offer = (await relay.ask("subscribe", { feed })).offer; } catch (err) { drop(feed); throw err; }
    entry.subscribed = true;
    const pc = new RTCPeerConnection({});
    entry.pc = pc;
    pc.ontrack = (e) => { entry.stream.addTrack(e.track); entry.video.play().catch(() => {}); };
    await pc.setRemoteDescription({ type: "offer", sdp: offer });
    await pc.setLocalDescription(await pc.createAnswer());
    await iceComplete(pc);
    await relay.ask("start", { feed, answer: pc.localDescription.sdp });
  }

  function onRoomEvent(msg) {
    if (msg.event === "publishers") {
      for (const p of msg.publishers) subscribe(p.id, p.display).catch((err) => notice(err.message));
    } else if (msg.event === "gone") {
      drop(msg.id);
    } else if (msg.event === "talking") {
      const entry = tiles.get(msg.id);
      if (entry) entry.el.classList.toggle("speaking", msg.on);
      if (entry && msg.on) document.body.dataset.speaker = entry.name;
    } else if (msg.event === "removed" || msg.event === "ended") {
      cutOff(msg.message);
    } else if (msg.event === "hangup" && !left) {
      say("媒体连接已断开");
    }
  }

  function onEnd(code, reason) {
    if (left) return;
    if (code === 4403) { cutOff(reason); return; }
    left = true;
    document.body.dataset.state = "disconnected";
    say("已断开");
    notice(reason.startsWith("与会商") || code === 4503 ? reason : `与会商服务器的连接中断：${reason}`);
  }

  // The control plane has cut this site off (removed, or the consultation ended); Janus has already ended its media.
  function cutOff(message) {
    if (left) return;
    left = true;
    for (const id of [...tiles.keys()]) { const e = tiles.get(id); if (e.pc) e.pc.close(); e.el.remove(); }
    tiles.clear();
    if (pub && pub.pc) pub.pc.close();
    if (localStream) localStream.getTracks().forEach((t) => t.stop());
    relay.close();
    document.body.dataset.state = "removed";
    say("已断开");
    notice(message);
  }

  async function publish() {
    localStream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
    cameraTrack = localStream.getVideoTracks()[0];
    const me = tile(ticket.participant_id, ticket.site, true);
    localStream.getTracks().forEach((t) => me.stream.addTrack(t));
    const pc = new RTCPeerConnection({});
    pub.pc = pc;
    pc.addTransceiver(localStream.getAudioTracks()[0], { direction: "sendonly" }); // mid 0: what moderators mute
    pub.video = pc.addTransceiver(cameraTrack, { direction: "sendonly" });
    await pc.setLocalDescription(await pc.createOffer());
    await iceComplete(pc);
    const published = await relay.ask("publish", { offer: pc.localDescription.sdp });
    await pc.setRemoteDescription({ type: "answer", sdp: published.answer });
  }

  async function join() {
    $("join-button").disabled = true;
    let joined;
    try {
      relay = new Relay(onRoomEvent, onEnd);
      await relay.open();
      joined = await relay.ask("join", { pin: $("pin").value.trim() });
    } catch (err) {
      if (relay) { relay.onEnd = () => {}; relay.close(); }
      notice(err.message);
      $("join-button").disabled = false;
      return;
    }
    try {
      pub = {};
      $("join").classList.add("hidden");
      ["toggle-camera", "toggle-mic", "share-screen", "leave"].forEach((id) => $(id).classList.remove("hidden"));
      if (ticket.moderator) $("moderation").classList.remove("hidden");
      $("notice").classList.add("hidden");
      await publish();
      for (const p of joined.publishers) subscribe(p.id, p.display).catch((err) => notice(err.message));
      document.body.dataset.state = "joined";
      say("已加入会商");
    } catch (err) {
      notice(`加入失败：${err.message}`);
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
    if (button.classList.contains("active")) {
      await pub.video.sender.replaceTrack(cameraTrack);
      button.classList.remove("active"); button.textContent = "共享屏幕";
      return;
    }
    try {
      const screen = await navigator.mediaDevices.getDisplayMedia({ video: true });
      const track = screen.getVideoTracks()[0];
      track.onended = () => { if (button.classList.contains("active")) shareScreen(); };
      await pub.video.sender.replaceTrack(track);
      button.classList.add("active"); button.textContent = "停止共享";
    } catch (err) { notice(`无法共享屏幕：${err.message}`); }
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
    $("join").classList.remove("hidden");
    say("未加入");
    $("join-button").onclick = join;
    $("toggle-camera").onclick = (e) => toggle(e.target, "video", "关闭摄像头", "打开摄像头");
    $("toggle-mic").onclick = (e) => toggle(e.target, "audio", "关闭麦克风", "打开麦克风");
    $("share-screen").onclick = shareScreen;
    $("leave").onclick = () => { left = true; relay.close(); location.reload(); };
    $("lock").onclick = async (e) => {
      const on = !e.target.classList.contains("active");
      try { await control("POST", `/api/v1/consultations/${cid}/lock`, { on });
        e.target.classList.toggle("active", on); e.target.textContent = on ? "解除锁定" : "锁定会商";
      } catch (err) { notice(err.message); }
    };
    $("record").onclick = async (e) => {
      const on = !e.target.classList.contains("active");
      try { await control("POST", `/api/v1/consultations/${cid}/recording`, { on });
        e.target.classList.toggle("active", on); e.target.textContent = on ? "停止录像" : "开始录像";
      } catch (err) { notice(err.message); }
    };
  }

  // For monitoring and tests: frames decoded per remote site.
  window.consultStats = async () => {
    const result = {};
    for (const [id, entry] of tiles) {
      if (!entry.pc) continue;
      let frames = 0;
      (await entry.pc.getStats()).forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0; });
      result[entry.name] = frames;
    }
    return result;
  };

  start();
})();
