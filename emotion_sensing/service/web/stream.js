// One WebSocket per conversation to the emotion service's /v1/sessions/{id}/stream
// (emotion_sensing/service/stream.py): binary messages are one type byte then the payload,
// 0x01 a JPEG frame, 0x02 16 kHz mono PCM16 LE audio; JSON events come back.

export const FRAME = 0x01;
export const AUDIO = 0x02;
// Bytes still queued in the socket above which no new frame is sent (a slow link).
const MAX_BUFFERED_FRAME = 256 * 1024;
// Audio is dropped only when this much is queued (the service handles it in order).
const MAX_BUFFERED_AUDIO = 2 * 1024 * 1024;
// A frame's answer that takes longer than this no longer holds back the next frame.
const FRAME_ANSWER_TIMEOUT_MS = 3000;
const KEPT_DELAYS = 200;

function typed(kind, bytes) {
  const message = new Uint8Array(bytes.byteLength + 1);
  message[0] = kind;
  message.set(new Uint8Array(bytes.buffer ?? bytes, bytes.byteOffset ?? 0, bytes.byteLength), 1);
  return message.buffer;
}

// The answer to a frame: the service sends exactly one of these per analysed frame.
function answersFrame(event) {
  if (event.type === "reading") return event.reading?.modality === "face";
  if (event.type === "no_face") return true;
  // The sensing worker drops utterances too; only a frame's drop answers a frame.
  if (event.type === "dropped") return event.modality !== "voice";
  return event.type === "error" && event.modality !== "voice";
}

export class EmotionStream {
  constructor(url, { onEvent = () => {}, onStatus = () => {} } = {}) {
    this.url = url;
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.ws = null;
    this.wanted = false;
    this.attempt = 0;
    this.pending = null;
    this.refusal = null;
    this.stats = { framesSent: 0, framesHeldBack: 0, framesAnswered: 0, faceReadings: 0,
                   audioChunksSent: 0, audioBytesSent: 0, audioChunksDropped: 0, reconnects: 0,
                   delaysMs: [], roundTripsMs: [] };
  }

  get connected() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  open() {
    if (this.wanted) return;
    this.wanted = true;
    this.refusal = null;
    this.connect();
  }

  close() {
    this.wanted = false;
    clearTimeout(this.retryTimer);
    const ws = this.ws;
    this.ws = null;
    this.pending = null;
    if (ws) ws.close();
    this.onStatus("off");
  }

  connect() {
    const ws = new WebSocket(this.url);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => { this.attempt = 0; this.onStatus("open"); };
    ws.onmessage = (message) => this.receive(message);
    ws.onclose = (closed) => {
      if (this.ws !== ws) return;  // closed on purpose
      this.ws = null;
      this.pending = null;
      if (closed.code >= 4400 && closed.code < 4500) {
        // Refused (this page's origin is not allowed, a wrong token): retrying cannot help.
        this.wanted = false;
        this.refusal = this.refusal || closed.reason || `refused (${closed.code})`;
        this.onStatus("refused");
        return;
      }
      this.onStatus("reconnecting");
      this.retry();
    };
    this.ws = ws;
    this.onStatus("connecting");
  }

  retry() {
    // 0.5, 1, 2, 4, 8 then every 10 s: a restarted service is found again without a reload.
    const delay = Math.min(10000, 500 * 2 ** this.attempt++);
    this.stats.reconnects++;
    this.retryTimer = setTimeout(() => { if (this.wanted) this.connect(); }, delay);
  }

  // Back-pressure: one frame in flight, and none while the socket is still sending.
  canSendFrame() {
    if (!this.connected) return false;
    if (this.pending && performance.now() - this.pending.sentAt < FRAME_ANSWER_TIMEOUT_MS) return false;
    return this.ws.bufferedAmount < MAX_BUFFERED_FRAME;
  }

  sendFrame(jpeg) {
    if (!this.canSendFrame()) {
      this.stats.framesHeldBack++;
      return false;
    }
    this.ws.send(typed(FRAME, jpeg));
    this.pending = { sentAt: performance.now(), sentEpochMs: Date.now() };
    this.stats.framesSent++;
    return true;
  }

  sendAudio(pcm16) {
    if (!this.connected || this.ws.bufferedAmount > MAX_BUFFERED_AUDIO) {
      this.stats.audioChunksDropped++;
      return false;
    }
    this.ws.send(typed(AUDIO, pcm16));
    this.stats.audioChunksSent++;
    this.stats.audioBytesSent += pcm16.byteLength;
    return true;
  }

  control(type) {
    if (this.connected) this.ws.send(JSON.stringify({ type }));
  }

  receive(message) {
    let event;
    try { event = JSON.parse(message.data); } catch { return; }
    if (event.type === "error" && event.code === "origin_not_allowed") this.refusal = event.message;
    if (this.pending && answersFrame(event)) {
      const frame = this.pending;
      this.pending = null;
      this.stats.framesAnswered++;
      event.roundTripMs = performance.now() - frame.sentAt;
      keep(this.stats.roundTripsMs, event.roundTripMs);
      if (event.type === "reading") {
        this.stats.faceReadings++;
        // "at" is the service's clock when the reading was in the session state; the page
        // and the service share a clock when they share a machine.
        if (typeof event.at === "number") keep(this.stats.delaysMs, event.at * 1000 - frame.sentEpochMs);
      }
    }
    this.onEvent(event);
  }
}

function keep(list, value) {
  list.push(value);
  if (list.length > KEPT_DELAYS) list.shift();
}

export function median(values) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}
