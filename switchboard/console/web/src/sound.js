// Sounds of the duty room, synthesised (no audio file to fetch): a ring for an incoming call, a chime for a report
// deadline. Browsers allow sound once the page has been clicked, which signing in does.
let context = null;

function audio() {
  context ??= new AudioContext();
  if (context.state === "suspended") context.resume().catch(() => {});
  return context;
}

function beep(freq, start, length) {
  const ctx = audio();
  const tone = ctx.createOscillator();
  const gain = ctx.createGain();
  tone.frequency.value = freq;
  gain.gain.setValueAtTime(0.2, ctx.currentTime + start);
  gain.gain.setValueAtTime(0, ctx.currentTime + start + length);
  tone.connect(gain).connect(ctx.destination);
  tone.start(ctx.currentTime + start);
  tone.stop(ctx.currentTime + start + length);
}

/** Ring (two short bursts every two seconds) until the returned function is called. */
export function ring() {
  const burst = () => { beep(480, 0, 0.4); beep(480, 0.6, 0.4); };
  burst();
  const timer = setInterval(burst, 2000);
  return () => clearInterval(timer);
}

/** Three rising notes: a report is due soon or overdue. */
export function chime() {
  [660, 880, 1100].forEach((freq, i) => beep(freq, i * 0.25, 0.2));
}
