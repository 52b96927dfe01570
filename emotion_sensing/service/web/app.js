// The chat page: Rasa's socket.io channel for the conversation, the emotion service for
// sensing. The conversation id is the socket.io session id, so Rasa's sender id, which the
// sensing action asks the service about, is the id this page streams frames and audio under.
import { Camera, Microphone, followSwitch, frameSender, sensingLabel } from "./media.js";
import { EmotionStream, median } from "./stream.js";

const FRAMES_PER_SECOND = 4;
const STATE_POLL_MS = 1000;
const TRACKER_RETRIES = 6;
const TRACKER_RETRY_MS = 300;

const $ = (id) => document.getElementById(id);
const config = await (await fetch("/chat/config.json")).json();
const LABELS = config.labels;
const params = new URLSearchParams(location.search);
const rasaUrl = params.get("rasa") || config.rasa_url;
const sessionId = params.get("session") || sessionStorage.getItem("emobot-session")
  || `web-${crypto.getRandomValues(new Uint32Array(2)).reduce((s, n) => s + n.toString(16).padStart(8, "0"), "")}`;
sessionStorage.setItem("emobot-session", sessionId);
const serviceBase = location.origin;
// A service listening off loopback wants its token (auth.py): open the page with ?token=...
const token = params.get("token");
const authorization = token ? { Authorization: `Bearer ${token}` } : {};

$("session-id").textContent = sessionId;
$("replay-link").href = `/replay/${encodeURIComponent(sessionId)}`;

// ---- emotion bars -------------------------------------------------------------------------

const barRows = {};
for (const bars of document.querySelectorAll(".bars")) {
  barRows[bars.dataset.modality] = {};
  for (const label of LABELS) {
    const name = Object.assign(document.createElement("span"), { className: "name", textContent: label });
    const bar = Object.assign(document.createElement("span"), { className: "bar" });
    const fill = document.createElement("i");
    fill.style.setProperty("--c", `var(--${label})`);
    bar.append(fill);
    const value = Object.assign(document.createElement("span"), { className: "value", textContent: "" });
    bars.append(name, bar, value);
    barRows[bars.dataset.modality][label] = { fill, value };
  }
  bars.dataset.stale = "true";
}

function showBars(modality, probs, label, detail = "") {
  const rows = barRows[modality];
  $(`bars-${modality}`).dataset.stale = probs ? "false" : "true";
  for (const name of LABELS) {
    const p = probs ? probs[name] ?? 0 : 0;
    rows[name].fill.style.width = `${(100 * p).toFixed(1)}%`;
    rows[name].value.textContent = probs ? p.toFixed(2) : "";
  }
  const title = $(`${modality}-label`);
  title.textContent = label ? `${label}${detail}` : "—";
  title.style.color = label ? `var(--${label})` : "";
  title.dataset.label = label || "";
}

let lastState = null;

function showState(state) {
  if (!state) return;
  lastState = state;
  const mood = state.mood_share >= 0.005 ? `, ${Math.round(state.mood_share * 100)}% carried from earlier turns` : "";
  showBars("fused", state.label === config.unknown ? null : state.probs, state.label,
    state.label === config.unknown ? "" : ` ${state.confidence.toFixed(2)}${mood}`);
  const byModality = Object.fromEntries((state.contributions || []).map((c) => [c.modality, c]));
  for (const modality of ["face", "voice", "text"]) {
    const c = byModality[modality];
    showBars(modality, c ? c.probs : null, c ? c.label : null, c ? ` (share ${c.share.toFixed(2)})` : "");
  }
}

async function pollState() {
  if (document.visibilityState === "visible") {
    try {
      const response = await fetch(`${serviceBase}/v1/sessions/${encodeURIComponent(sessionId)}`,
        { headers: authorization });
      if (response.ok) showState((await response.json()).state);
    } catch { /* the service is restarting: the next poll tries again */ }
  }
  setTimeout(pollState, STATE_POLL_MS);
}
pollState();

// ---- chat through Rasa's socket.io channel --------------------------------------------------

const messages = $("messages");
const connection = $("connection");

function setConnection(state, text) {
  connection.dataset.state = state;
  connection.textContent = text;
}

function addMessage(who, text) {
  const item = Object.assign(document.createElement("li"), { className: `msg ${who}` });
  item.append(Object.assign(document.createElement("span"), { className: "text", textContent: text }));
  messages.append(item);
  messages.scrollTop = messages.scrollHeight;
  return item;
}

// Off loopback Rasa's socket.io channel wants a JWT (?jwt=...) and its HTTP API a token (?rasa_token=...).
const jwt = params.get("jwt");
const rasaToken = params.get("rasa_token");
const socket = io(rasaUrl, { path: config.socketio_path, transports: ["websocket"], ...(jwt ? { auth: { token: jwt } } : {}) });
socket.on("connect", () => socket.emit("session_request", { session_id: sessionId }));
socket.on("session_confirm", () => {
  setConnection("connected", "connected");
  $("message-input").disabled = false;
  $("send").disabled = false;
});
socket.on("disconnect", () => setConnection("connecting", "reconnecting to the assistant…"));
socket.on("connect_error", () => setConnection("error", `the assistant is not answering at ${rasaUrl}`));
socket.on("bot_uttered", (reply) => {
  const item = addMessage("bot", reply.text || (reply.attachment ? "[attachment]" : ""));
  const buttons = reply.quick_replies || reply.buttons || [];
  if (buttons.length) {
    const row = Object.assign(document.createElement("div"), { className: "buttons" });
    for (const b of buttons) {
      const button = Object.assign(document.createElement("button"), { type: "button", textContent: b.title });
      // One answer per question: the row is spent once a button is clicked (a rating clicked twice
      // was two ratings), and the chosen one stays marked.
      button.onclick = () => {
        for (const other of row.querySelectorAll("button")) other.disabled = true;
        button.classList.add("chosen");
        button.setAttribute("aria-pressed", "true");
        send(b.payload, b.title);
      };
      row.append(button);
    }
    item.append(row);
  }
  item.dataset.fallbackEmotion = lastState ? lastState.label : config.unknown;
  scheduleAdaptation();
});

function send(text, shown = text) {
  addMessage("user", shown);
  socket.emit("user_uttered", {
    message: text,
    session_id: sessionId,
    customData: { emobot: { session_id: sessionId, source: "web", camera: camera.on, microphone: microphone.on } },
  });
}

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("message-input");
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  send(text);
});

// ---- which emotion each reply was adapted to: user_emotion in Rasa's tracker ----------------

let adaptationTimer = null;

function scheduleAdaptation() {
  clearTimeout(adaptationTimer);
  adaptationTimer = setTimeout(() => annotateReplies(0), TRACKER_RETRY_MS);
}

function markAdapted(item, emotion, source) {
  let note = item.querySelector(".adapted");
  if (!note) {
    note = Object.assign(document.createElement("span"), { className: "adapted" });
    item.append(note);
  }
  item.dataset.emotion = emotion;
  item.dataset.emotionSource = source;
  note.innerHTML = "";
  if (emotion === config.unknown) {  // "adapted to unknown" read as if unknown were a feeling
    note.append("no emotion sensed: the plain wording");
    return;
  }
  const label = Object.assign(document.createElement("b"), { textContent: emotion });
  label.style.setProperty("--c", `var(--${emotion})`);
  note.append(source === "tracker" ? "adapted to " : "sensed ", label);
}

// The tracker is saved after the turn, so the newest replies may need another look.
async function annotateReplies(attempt) {
  const replies = [...messages.querySelectorAll(".msg.bot")];
  let adapted = null;
  try {
    const response = await fetch(`${rasaUrl}/conversations/${encodeURIComponent(sessionId)}/tracker`
      + (rasaToken ? `?token=${encodeURIComponent(rasaToken)}` : ""));
    if (response.ok) {
      adapted = [];
      let emotion = config.unknown;
      for (const event of (await response.json()).events || []) {
        if (event.event === "slot" && event.name === "user_emotion") emotion = event.value || config.unknown;
        if (event.event === "bot") adapted.push(emotion);
      }
    }
  } catch { /* Rasa's HTTP API is off: fall back to the sensed state below */ }
  if (adapted === null) {
    for (const item of replies) if (!item.dataset.emotion) markAdapted(item, item.dataset.fallbackEmotion, "service");
    return;
  }
  // The page may have joined a conversation that started elsewhere: align from the end.
  const offset = adapted.length - replies.length;
  replies.forEach((item, i) => { if (adapted[offset + i] !== undefined) markAdapted(item, adapted[offset + i], "tracker"); });
  if (offset < 0 && attempt < TRACKER_RETRIES) setTimeout(() => annotateReplies(attempt + 1), TRACKER_RETRY_MS);
}

// ---- sensing: camera and microphone over one WebSocket ----------------------------------------

const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/sessions/${encodeURIComponent(sessionId)}/stream`
  + (token ? `?token=${encodeURIComponent(token)}` : "");
let streamStatus = "off";
const stream = new EmotionStream(wsUrl, {
  onStatus: (status) => { streamStatus = status; showSensing(); },
  onEvent: (event) => {
    if (event.state) showState(event.state);
    if (event.type === "error" && event.code) showMediaMessage(`${event.modality || "face"}: ${event.message}`);
  },
});
const camera = new Camera($("preview"));
const microphone = new Microphone((chunk) => stream.sendAudio(chunk));
let frameTimer = null;

function showSensing() {
  const { on, text } = sensingLabel(camera, microphone, streamStatus);
  const indicator = $("sensing-indicator");
  indicator.dataset.on = String(on);
  indicator.textContent = text;
}

function showMediaMessage(text) {
  const message = $("media-message");
  message.hidden = !text;
  message.textContent = text || "";
}

function updateStream() {
  if (camera.on || microphone.on) stream.open(); else stream.close();
  showSensing();
}

const sendFrame = frameSender(camera, () => stream, () => { stream.stats.framesHeldBack++; });

function switchDevice(checkbox, device, name, started, stopped) {
  return followSwitch(checkbox, device, name, { showMessage: showMediaMessage, started, stopped, changed: updateStream });
}

$("camera-switch").addEventListener("change", (event) => switchDevice(event.target, camera, "camera",
  () => { $("preview").dataset.on = "true"; frameTimer = setInterval(sendFrame, 1000 / FRAMES_PER_SECOND); },
  () => { $("preview").dataset.on = "false"; clearInterval(frameTimer); frameTimer = null; }));
$("mic-switch").addEventListener("change", (event) => switchDevice(event.target, microphone, "microphone"));

function showStats() {
  const s = stream.stats;
  const delay = median(s.delaysMs);
  $("stats").textContent = `frames sent ${s.framesSent} · face readings ${s.faceReadings}`
    + (delay === null ? "" : ` · frame→reading ${delay.toFixed(0)} ms (median)`)
    + ` · audio ${(s.audioBytesSent / 2 / 16000).toFixed(1)} s sent`
    + (s.reconnects ? ` · reconnects ${s.reconnects}` : "");
}
setInterval(showStats, 500);
showStats();
showSensing();

// For tests and curious people: window.emobot.stats() in the console.
window.emobot = {
  sessionId, rasaUrl, config, stream, camera, microphone,
  stats: () => ({ ...stream.stats, medianDelayMs: median(stream.stats.delaysMs),
                  medianRoundTripMs: median(stream.stats.roundTripsMs), streamStatus }),
};
