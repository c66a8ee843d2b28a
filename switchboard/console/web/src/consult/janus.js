// The page's way into the room: janus.js (npm janus-gateway) speaking the Janus WebSocket API to the switchboard's
// relay at /consult/{id}/signal, never to Janus itself; the join token rides in every request. Requests on a handle
// are answered by the next plugin event that answers them (or carries an error), as the VideoRoom plugin does.
import Janus from "janus-gateway";
import adapter from "webrtc-adapter";

let onClose = () => {};

function init() {
  const dependencies = Janus.useDefaultDependencies({ adapter });
  const open = dependencies.newWebSocket;
  // janus.js reports a lost socket without its close code and reason: the page needs both (removed, ended).
  dependencies.newWebSocket = (server, protocol) => {
    const socket = open(server, protocol);
    socket.addEventListener("close", (e) => onClose(e.code, e.reason));
    return socket;
  };
  return new Promise((resolve) => Janus.init({ debug: false, dependencies, callback: resolve }));
}

/** A session through the relay; `closed(code, reason)` once its socket closes. */
export async function connect(cid, token, closed) {
  await init();
  onClose = closed;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return new Promise((resolve, reject) => {
    const janus = new Janus({
      server: `${scheme}://${location.host}/consult/${cid}/signal`,
      token,
      iceServers: [], // media goes straight to Janus on the duty network: no STUN server elsewhere
      success: () => resolve(janus),
      error: (reason) => reject(new Error(reason)),
    });
  });
}

/** A VideoRoom (or AudioBridge) handle; `onEvent(data)` hears what no request waits for, `onTrack(track, on)` its
 * remote tracks. */
export class Handle {
  constructor(janus, { onEvent = () => {}, onTrack = () => {}, plugin = "janus.plugin.videoroom" } = {}) {
    this.janus = janus;
    this.pluginName = plugin;
    this.onEvent = onEvent;
    this.onTrack = onTrack;
    this.waiting = null;
  }

  open() {
    return new Promise((resolve, reject) => this.janus.attach({
      plugin: this.pluginName,
      success: (plugin) => { this.plugin = plugin; resolve(this); },
      error: (reason) => reject(new Error(reason)),
      onmessage: (data, jsep) => this.received(data, jsep),
      onremotetrack: (track, mid, on) => this.onTrack(track, on),
    }));
  }

  received(data, jsep) {
    const waiting = this.waiting;
    if (waiting && (data.error_code || waiting.answers(data))) {
      this.waiting = null;
      if (data.error_code) waiting.reject(new Error(data.error));
      else waiting.resolve({ data, jsep });
    }
    if (!data.error_code) this.onEvent(data);
  }

  /** Send `message` (with `jsep`), resolved by the event for which `answers(data)` holds. */
  request(message, jsep, answers) {
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject, answers };
      this.plugin.send({ message, jsep, error: (reason) => { this.waiting = null; reject(new Error(reason)); } });
    });
  }

  offer(tracks) {
    return new Promise((resolve, reject) => this.plugin.createOffer({
      tracks, success: resolve, error: (e) => reject(new Error(String(e))),
    }));
  }

  answer(jsep) {
    return new Promise((resolve, reject) => this.plugin.createAnswer({
      jsep, tracks: [], success: resolve, error: (e) => reject(new Error(String(e))),
    }));
  }

  accept(jsep) {
    return new Promise((resolve, reject) => this.plugin.handleRemoteJsep({
      jsep, success: resolve, error: (e) => reject(new Error(String(e))),
    }));
  }

  /** The PeerConnection, for its statistics and senders. */
  get pc() { return this.plugin && this.plugin.webrtcStuff.pc; }

  detach() { if (this.plugin) this.plugin.detach(); }
}
