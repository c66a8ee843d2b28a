// The join page's Janus client: Janus HTTP API (long poll), VideoRoom publisher plus one subscriber per site.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const token = params.get("token") || "";
  const cid = location.pathname.split("/").filter(Boolean).pop();
  const tiles = new Map(); // participant id -> {el, video, stream, pc, handle}
  let janus = null, ticket = null, pub = null, localStream = null, cameraTrack = null, left = false;

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

  class Janus {
    constructor(url) { this.url = url; this.pending = new Map(); this.handlers = new Map(); }
    tx() { return Math.random().toString(36).slice(2, 12); }
    async post(path, msg) {
      const res = await fetch(this.url + path, { method: "POST", body: JSON.stringify(msg) });
      const reply = await res.json();
      if (reply.janus === "error") throw new Error(reply.error.reason);
      return reply;
    }
    async create() {
      this.session = (await this.post("", { janus: "create", transaction: this.tx() })).data.id;
      this.poll();
    }
    async poll() {
      while (this.session && !left) {
        try {
          const res = await fetch(`${this.url}/${this.session}?maxev=10&rid=${Date.now()}`);
          const events = await res.json();
          for (const ev of Array.isArray(events) ? events : [events]) this.dispatch(ev);
        } catch (err) { say("与会商服务器的连接中断，正在重试…"); await new Promise((r) => setTimeout(r, 1000)); }
      }
    }
    dispatch(ev) {
      if (ev.janus === "keepalive") return;
      if (ev.janus === "error" && ev.error && ev.error.code === 458) { this.session = null; say("会话已失效"); return; }
      const waiting = ev.transaction && this.pending.get(ev.transaction);
      if (waiting && ev.janus === "event") { this.pending.delete(ev.transaction); waiting(ev); return; }
      const handler = this.handlers.get(ev.sender);
      if (handler) handler(ev);
    }
    async attach(onEvent) {
      const reply = await this.post(`/${this.session}`, { janus: "attach", plugin: "janus.plugin.videoroom", transaction: this.tx() });
      this.handlers.set(reply.data.id, onEvent || (() => {}));
      return reply.data.id;
    }
    message(handle, body, jsep) {
      const transaction = this.tx();
      const answered = new Promise((resolve) => this.pending.set(transaction, resolve));
      const msg = { janus: "message", transaction, body };
      if (jsep) msg.jsep = jsep;
      return this.post(`/${this.session}/${handle}`, msg).then(() => answered);
    }
    detach(handle) {
      this.handlers.delete(handle);
      return this.post(`/${this.session}/${handle}`, { janus: "detach", transaction: this.tx() }).catch(() => {});
    }
    destroy() {
      const session = this.session; this.session = null;
      if (session) return this.post(`/${session}`, { janus: "destroy", transaction: this.tx() }).catch(() => {});
    }
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
    const entry = { el, video, stream: new MediaStream(), pc: null, handle: null, name };
    video.srcObject = entry.stream;
    tiles.set(id, entry);
    return entry;
  }

  function drop(id) {
    const entry = tiles.get(id);
    if (!entry || id === ticket.participant_id) return;
    if (entry.pc) entry.pc.close();
    if (entry.handle) janus.detach(entry.handle);
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
    entry.handle = await janus.attach((ev) => {
      if (ev.janus === "hangup") drop(feed);
    });
    const body = { request: "join", ptype: "subscriber", room: ticket.room, streams: [{ feed }], private_id: pub.privateId };
    if (ticket.pin) body.pin = ticket.pin;
    const joined = await janus.message(entry.handle, body);
    if (!joined.jsep) { drop(feed); return; }
    const pc = new RTCPeerConnection({});
    entry.pc = pc;
    pc.ontrack = (e) => { entry.stream.addTrack(e.track); entry.video.play().catch(() => {}); };
    await pc.setRemoteDescription(joined.jsep);
    await pc.setLocalDescription(await pc.createAnswer());
    await iceComplete(pc);
    await janus.message(entry.handle, { request: "start", room: ticket.room }, { type: "answer", sdp: pc.localDescription.sdp });
  }

  function onRoomEvent(ev) {
    if (ev.janus === "hangup" && !left) { say("媒体连接已断开"); return; }
    const data = ev.plugindata && ev.plugindata.data;
    if (!data) return;
    if (data.videoroom === "talking" || data.videoroom === "stopped-talking") {
      const entry = tiles.get(data.id);
      if (entry) entry.el.classList.toggle("speaking", data.videoroom === "talking");
      if (entry && data.videoroom === "talking") document.body.dataset.speaker = entry.name;
      return;
    }
    for (const p of data.publishers || []) subscribe(p.id, p.display).catch((err) => notice(err.message));
    if (data.leaving === "ok" && data.reason === "kicked") { kicked(); return; }
    const gone = data.unpublished || data.leaving || data.kicked;
    if (gone && gone !== "ok") drop(gone);
  }

  function kicked() {
    left = true;
    for (const id of [...tiles.keys()]) { const e = tiles.get(id); if (e.pc) e.pc.close(); e.el.remove(); }
    tiles.clear();
    if (pub && pub.pc) pub.pc.close();
    if (localStream) localStream.getTracks().forEach((t) => t.stop());
    janus.destroy();
    document.body.dataset.state = "removed";
    say("已断开");
    notice("您已被主持人移出本次会商");
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
    const answer = await janus.message(pub.handle, { request: "configure", audio: true, video: true },
      { type: "offer", sdp: pc.localDescription.sdp });
    if (!answer.jsep) throw new Error((answer.plugindata.data.error) || "发布失败");
    await pc.setRemoteDescription(answer.jsep);
  }

  async function join() {
    $("join-button").disabled = true;
    try {
      ticket.pin = $("pin").value.trim();
      janus = new Janus(ticket.janus_url);
      await janus.create();
      pub = { handle: await janus.attach(onRoomEvent) };
      const body = { request: "join", ptype: "publisher", room: ticket.room, id: ticket.participant_id,
        display: ticket.site, token: ticket.room_token };
      if (ticket.pin) body.pin = ticket.pin;
      const joined = (await janus.message(pub.handle, body)).plugindata.data;
      if (joined.videoroom !== "joined") {
        janus.destroy();
        $("join-button").disabled = false;
        const reasons = { 432: "会商参会方已满", 433: "会商密码错误或无权加入", 436: "您已在会商中（另一个窗口）" };
        notice(reasons[joined.error_code] || `无法加入：${joined.error}`);
        return;
      }
      pub.privateId = joined.private_id;
      $("join").classList.add("hidden");
      ["toggle-camera", "toggle-mic", "share-screen", "leave"].forEach((id) => $(id).classList.remove("hidden"));
      if (ticket.moderator) $("moderation").classList.remove("hidden");
      $("notice").classList.add("hidden");
      await publish();
      for (const p of joined.publishers || []) subscribe(p.id, p.display).catch((err) => notice(err.message));
      document.body.dataset.state = "joined";
      say("已加入会商");
    } catch (err) {
      notice(`加入失败：${err.message}`);
      $("join-button").disabled = false;
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
    $("leave").onclick = () => { left = true; janus.destroy(); location.reload(); };
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
