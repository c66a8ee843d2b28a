// The device check before joining: choose the camera, microphone and speaker, see your own preview, watch the
// microphone's level and play a test sound on the chosen speaker. The stream checked is the stream published.

const KINDS = { videoinput: "摄像头", audioinput: "麦克风", audiooutput: "扬声器" };

export class DeviceCheck {
  /** `els`: the camera, microphone and speaker selects, the preview video, the level bar and the test button. */
  constructor(els) {
    this.els = els;
    this.stream = null;
    this.audio = null; // the AudioContext behind the level meter and the test sound
    this.frame = 0;
  }

  async start() {
    await this.capture();
    await this.list();
    this.els.camera.onchange = this.els.microphone.onchange = () => this.capture().catch((e) => this.els.onError(e));
    this.els.test.onclick = () => this.testSound().catch((e) => this.els.onError(e));
  }

  constraints() {
    const pick = (select) => (select.value ? { deviceId: { exact: select.value } } : {});
    return { audio: { ...pick(this.els.microphone) }, video: { width: 640, height: 480, ...pick(this.els.camera) } };
  }

  async capture() {
    this.stopTracks();
    this.stream = await navigator.mediaDevices.getUserMedia(this.constraints());
    this.els.preview.srcObject = this.stream;
    this.meter();
  }

  /** The devices, by their names once the browser has granted them (it names none before). */
  async list() {
    const devices = await navigator.mediaDevices.enumerateDevices();
    const inUse = Object.fromEntries(this.stream.getTracks().map((t) => [t.kind, t.getSettings().deviceId]));
    for (const [kind, select] of [["videoinput", this.els.camera], ["audioinput", this.els.microphone],
      ["audiooutput", this.els.speaker]]) {
      const found = devices.filter((d) => d.kind === kind);
      select.replaceChildren(...(kind === "audiooutput" ? [new Option("系统默认扬声器", "")] : []), ...found.map(
        (d, i) => new Option(d.label || `${KINDS[kind]} ${i + 1}`, d.deviceId)));
      const current = inUse[kind === "videoinput" ? "video" : "audio"];
      if (kind !== "audiooutput" && current) select.value = current;
    }
  }

  context() {
    if (!this.audio) this.audio = new AudioContext();
    if (this.audio.state === "suspended") this.audio.resume().catch(() => {});
    return this.audio;
  }

  /** The microphone's level, 0-100, drawn as a bar (and kept in data-level for monitoring and tests). */
  meter() {
    cancelAnimationFrame(this.frame);
    const analyser = this.context().createAnalyser();
    analyser.fftSize = 1024;
    this.context().createMediaStreamSource(this.stream).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const draw = () => {
      analyser.getFloatTimeDomainData(samples);
      const rms = Math.sqrt(samples.reduce((sum, s) => sum + s * s, 0) / samples.length);
      const level = Math.min(100, Math.round(rms * 300));
      this.els.level.style.width = `${level}%`;
      this.els.level.dataset.level = level;
      this.frame = requestAnimationFrame(draw);
    };
    draw();
  }

  /** A second of a 440 Hz tone on the chosen speaker. */
  async testSound() {
    const ctx = this.context();
    const tone = ctx.createOscillator();
    const gain = ctx.createGain();
    gain.gain.value = 0.2;
    const out = ctx.createMediaStreamDestination();
    tone.connect(gain).connect(out);
    const player = new Audio();
    player.srcObject = out.stream;
    if (this.els.speaker.value && player.setSinkId) await player.setSinkId(this.els.speaker.value);
    tone.start();
    tone.stop(ctx.currentTime + 1);
    this.els.test.dataset.played = String(Number(this.els.test.dataset.played || 0) + 1);
    await player.play();
  }

  /** The speaker chosen (empty: the system's). */
  get speaker() { return this.els.speaker.value; }

  /** The checked stream, to publish: the meter stops, the tracks go on. */
  take() {
    cancelAnimationFrame(this.frame);
    if (this.audio) this.audio.close().catch(() => {});
    this.audio = null;
    this.els.preview.srcObject = null;
    return this.stream;
  }

  stopTracks() {
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
  }
}
