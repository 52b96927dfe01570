// Camera and microphone, each started only when the person switches it on.

const MAX_FRAME_WIDTH = 640;
const JPEG_QUALITY = 0.8;
export const SAMPLE_RATE = 16000;
// A quarter second per message: the service cuts utterances itself, and four messages a
// second cost it (and the browser) less than ten, for the same audio.
const CHUNK_MS = 250;

export class Camera {
  constructor(video) {
    this.video = video;
    this.stream = null;
    this.canvas = document.createElement("canvas");
  }

  get on() { return this.stream !== null; }

  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia(
      { video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
    this.video.srcObject = this.stream;
    await this.video.play().catch(() => {});
  }

  stop() {
    if (this.stream) this.stream.getTracks().forEach((track) => track.stop());
    this.stream = null;
    this.video.srcObject = null;
  }

  // The current picture as JPEG bytes, or null before the first frame has arrived.
  async grab() {
    const { video, canvas } = this;
    if (!this.stream || video.readyState < 2 || !video.videoWidth) return null;
    const scale = Math.min(1, MAX_FRAME_WIDTH / video.videoWidth);
    canvas.width = Math.round(video.videoWidth * scale);
    canvas.height = Math.round(video.videoHeight * scale);
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", JPEG_QUALITY));
    return blob ? new Uint8Array(await blob.arrayBuffer()) : null;
  }
}

export class Microphone {
  // onChunk receives Int16Array chunks of 16 kHz mono PCM (CHUNK_MS each).
  constructor(onChunk) {
    this.onChunk = onChunk;
    this.stream = null;
    this.context = null;
  }

  get on() { return this.stream !== null; }

  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia(
      { audio: { channelCount: 1, echoCancellation: true, noiseSuppression: false, autoGainControl: true } });
    try {
      // Asking for 16 kHz lets the browser resample; the worklet downsamples whatever rate it gets.
      this.context = new AudioContext({ sampleRate: SAMPLE_RATE });
    } catch {
      this.context = new AudioContext();
    }
    // Beside this module, wherever the page is: the sensing script runs on other sites too.
    await this.context.audioWorklet.addModule(new URL("./pcm-worklet.js", import.meta.url).href);
    const source = this.context.createMediaStreamSource(this.stream);
    const writer = new AudioWorkletNode(this.context, "pcm16-writer",
      { processorOptions: { targetRate: SAMPLE_RATE, chunkMs: CHUNK_MS } });
    writer.port.onmessage = (message) => this.onChunk(new Int16Array(message.data));
    // A muted path to the speakers keeps the graph pulling audio through the worklet.
    const mute = this.context.createGain();
    mute.gain.value = 0;
    source.connect(writer).connect(mute).connect(this.context.destination);
    await this.context.resume();
  }

  stop() {
    if (this.stream) this.stream.getTracks().forEach((track) => track.stop());
    if (this.context) this.context.close();
    this.stream = null;
    this.context = null;
  }
}

// Turns `device` (a Camera or Microphone) on or off to follow its `checkbox`. A device that will
// not start (no permission, no hardware) is stopped again, its box unticked, and the reason shown
// through showMessage; started/stopped run around a successful change, changed after any.
export async function followSwitch(checkbox, device, name,
  { showMessage, started = () => {}, stopped = () => {}, changed = () => {} }) {
  showMessage("");
  if (checkbox.checked) {
    try {
      await device.start();
      started();
    } catch (error) {
      device.stop();
      checkbox.checked = false;
      showMessage(`${name} unavailable: ${error.message || error.name}`);
    }
  } else {
    stopped();
    device.stop();
  }
  changed();
}

// The camera's frame timer: each tick grabs a frame and sends it to the stream that
// `currentStream()` names, one grab at a time and only when that stream can take a frame (its
// answer to the last one is in, or overdue); `heldBack()` hears of each tick that sends nothing.
export function frameSender(camera, currentStream, heldBack = () => {}) {
  let grabbing = false;
  return async () => {
    const stream = currentStream();
    if (grabbing || !stream || !stream.canSendFrame()) {
      heldBack();
      return;
    }
    grabbing = true;
    try {
      const jpeg = await camera.grab();
      const now = currentStream();
      if (jpeg && camera.on && now) now.sendFrame(jpeg);
    } finally {
      grabbing = false;
    }
  };
}

// What the sensing indicator says: which devices are on, and the stream's status unless open.
export function sensingLabel(camera, microphone, streamStatus) {
  const on = [camera.on && "camera", microphone.on && "microphone"].filter(Boolean);
  return {
    on: on.length > 0,
    text: on.length
      ? `● sensing: ${on.join(" + ")}${streamStatus === "open" ? "" : ` (${streamStatus})`}`
      : "○ not sensing",
  };
}
