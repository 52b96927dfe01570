// emobot-sensing.js: camera and microphone emotion sensing for any page with a Rasa chat widget.
//
//   <script src="https://emotion.example.com/static/emobot-sensing.js"
//           data-service="https://emotion.example.com"></script>
//
// adds a small panel (camera and microphone switches, off until the person turns them on, and a
// red indicator while either is on) and streams frames and audio to the emotion service exactly
// as emobot's own chat page does (the same modules: media.js, stream.js). Readings land in the
// session whose id the page's widget uses with Rasa, so the sensing action finds them:
//
// - rasa-webchat: detected (its stored session id, `chat_session` in local or session storage);
// - any other client: data-session-id="..." on the script tag, or emobot.setSession(id) in JS
//   (window.emobot also has sessionId, ready, stats() and onSession(callback)).
//
// Options (data-* on the script tag): data-service (default: where the script came from),
// data-session-id, data-bars="off" (hide the live bars; the indicator always shows),
// data-position="bottom-left|bottom-right|top-left|top-right", data-collapsed="true" (start folded
// to the indicator and the switches; the person unfolds it with the button, and the page remembers
// the choice for the tab), data-token (a service bound off loopback wants its token). Nothing starts
// without a click: there is no autostart.
(() => {
  const script = document.currentScript;
  const data = script ? script.dataset : {};
  const service = (data.service || (script ? new URL(script.src).origin : location.origin)).replace(/\/+$/, "");
  const token = data.token || null;
  const FRAMES_PER_SECOND = 4;
  const STATE_POLL_MS = 1000;
  const SESSION_POLL_MS = 500;
  const WEBCHAT_KEY = data.storageKey || "chat_session";
  const COLLAPSED_KEY = "emobot-sensing-collapsed";
  const LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];
  const COLOURS = { angry: "#d62728", disgust: "#8c564b", fear: "#9467bd", happy: "#2ca02c", sad: "#1f77b4",
                    surprise: "#ff7f0e", neutral: "#7f7f7f" };
  if ("autostart" in data) console.warn("emobot-sensing: data-autostart is ignored: sensing starts only when the person switches it on");

  let sessionId = data.sessionId || null;
  let sessionSource = sessionId ? "data-session-id" : null;
  const listeners = [];
  const api = {
    service,
    get sessionId() { return sessionId; },
    get sessionSource() { return sessionSource; },
    setSession(id) { adopt(String(id), "setSession"); },
    onSession(callback) { listeners.push(callback); },
    stats: () => ({ sessionId, sessionSource, streamStatus: "off", framesSent: 0, faceReadings: 0, audioChunksSent: 0 }),
  };
  if (window.emobot) console.warn("emobot-sensing: window.emobot was already defined; replacing it");
  window.emobot = api;

  function webchatSession() {
    for (const storage of [window.localStorage, window.sessionStorage]) {
      try {
        const stored = JSON.parse(storage.getItem(WEBCHAT_KEY) || "null");
        if (stored && typeof stored.session_id === "string" && stored.session_id) return stored.session_id;
      } catch { /* not rasa-webchat's, or unreadable */ }
    }
    return null;
  }

  function adopt(id, source) {
    if (!id || id === sessionId) return;
    sessionId = id;
    sessionSource = source;
    listeners.forEach((callback) => callback(id));
  }

  // ---- the panel, in a shadow root so the page's styles and ours do not meet ----------------

  const host = document.createElement("div");
  host.id = "emobot-sensing";
  const position = (data.position || "bottom-left").split("-");
  Object.assign(host.style, { position: "fixed", zIndex: 2147483000, [position[0]]: "16px", [position[1] || "left"]: "16px" });
  const root = host.attachShadow({ mode: "open" });
  root.innerHTML = `
    <style>
      :host { all: initial; }
      .panel { font: 13px/1.35 system-ui, sans-serif; color: #222; background: #fff; border: 1px solid #ccc;
               border-radius: 8px; box-shadow: 0 2px 10px rgba(0,0,0,.15); padding: 8px 10px; width: 220px; }
      .head { display: flex; justify-content: space-between; align-items: center; gap: 8px; }
      .indicator { font-weight: 600; color: #555; }
      .fold { all: unset; cursor: pointer; color: #555; font-size: 15px; line-height: 1; padding: 0 4px; border-radius: 3px; }
      .fold:focus-visible { outline: 2px solid #1f77b4; }
      .panel[data-collapsed="true"] .preview, .panel[data-collapsed="true"] .bars,
      .panel[data-collapsed="true"] .about { display: none !important; }
      .indicator[data-on="true"] { color: #c00; }
      label { display: inline-flex; gap: 4px; align-items: center; margin-right: 10px; cursor: pointer; }
      .switches { margin: 6px 0 2px; }
      .message { color: #a00; margin: 4px 0 0; font-size: 12px; }
      video { width: 100%; border-radius: 4px; margin-top: 6px; display: none; }
      video[data-on="true"] { display: block; }
      .bars { display: grid; grid-template-columns: 58px 1fr; gap: 2px 6px; margin-top: 6px; font-size: 11px; }
      .bar { background: #eee; height: 9px; border-radius: 2px; overflow: hidden; align-self: center; }
      .bar i { display: block; height: 100%; width: 0; }
      .about { color: #777; font-size: 11px; margin-top: 4px; }
    </style>
    <div class="panel" role="region" aria-label="emotion sensing">
      <div class="head">
        <div class="indicator" role="status" aria-live="polite" data-on="false">○ not sensing</div>
        <button type="button" class="fold" aria-expanded="true" aria-label="fold the sensing panel">–</button>
      </div>
      <div class="switches">
        <label><input type="checkbox" class="camera-switch"> camera</label>
        <label><input type="checkbox" class="mic-switch"> microphone</label>
      </div>
      <p class="message" hidden></p>
      <video class="preview" autoplay muted playsinline data-on="false" aria-label="camera preview"></video>
      <div class="bars" aria-label="sensed emotion" ${data.bars === "off" ? "hidden" : ""}></div>
      <div class="about">emotion sensing · frames and sound are analysed, never stored</div>
    </div>`;
  const $ = (selector) => root.querySelector(selector);

  // Folding hides the preview and the bars, never the indicator or the switches.
  function fold(collapsed) {
    $(".panel").dataset.collapsed = String(collapsed);
    $(".fold").textContent = collapsed ? "+" : "–";
    $(".fold").setAttribute("aria-expanded", String(!collapsed));
    $(".fold").setAttribute("aria-label", collapsed ? "unfold the sensing panel" : "fold the sensing panel");
  }
  let remembered = null;  // the person's own choice in this tab wins over the page's data-collapsed
  try { remembered = window.sessionStorage.getItem(COLLAPSED_KEY); } catch { /* storage off */ }
  fold((remembered ?? data.collapsed) === "true");
  $(".fold").addEventListener("click", () => {
    const collapsed = $(".panel").dataset.collapsed !== "true";
    fold(collapsed);
    try { window.sessionStorage.setItem(COLLAPSED_KEY, String(collapsed)); } catch { /* storage off */ }
  });
  const fills = {};
  for (const label of LABELS) {
    const name = Object.assign(document.createElement("span"), { textContent: label });
    const bar = Object.assign(document.createElement("span"), { className: "bar" });
    const fill = document.createElement("i");
    fill.style.background = COLOURS[label];
    bar.append(fill);
    $(".bars").append(name, bar);
    fills[label] = fill;
  }
  const mount = () => document.body.append(host);
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);

  function showMessage(text) {
    $(".message").hidden = !text;
    $(".message").textContent = text || "";
  }

  // ---- sensing: the chat page's own modules, loaded from the service --------------------------

  const ready = Promise.all([import(`${service}/web/media.js`), import(`${service}/web/stream.js`)]).then(
    ([media, streaming]) => start(media, streaming),
    (error) => { showMessage(`emotion sensing unavailable: cannot load it from ${service} (${error.message || error})`); },
  );
  api.ready = ready;

  function start({ Camera, Microphone, followSwitch, frameSender, sensingLabel }, { EmotionStream, median }) {
    let stream = null;
    let streamStatus = "off";
    let frameTimer = null;
    const camera = new Camera($(".preview"));
    const microphone = new Microphone((chunk) => stream && stream.sendAudio(chunk));
    const totals = { framesSent: 0, faceReadings: 0, audioChunksSent: 0, audioBytesSent: 0, delaysMs: [] };

    function streamUrl(id) {
      const base = service.replace(/^http/, "ws");
      return `${base}/v1/sessions/${encodeURIComponent(id)}/stream` + (token ? `?token=${encodeURIComponent(token)}` : "");
    }

    function showSensing() {
      const { on, text } = sensingLabel(camera, microphone, streamStatus);
      const indicator = $(".indicator");
      indicator.dataset.on = String(on);
      indicator.textContent = text;
    }

    function showState(state) {
      for (const label of LABELS) fills[label].style.width = `${(100 * ((state && state.probs && state.probs[label]) || 0)).toFixed(1)}%`;
    }

    function fold(old) {
      if (!old) return;
      for (const key of ["framesSent", "faceReadings", "audioChunksSent", "audioBytesSent"]) totals[key] += old.stats[key];
      totals.delaysMs.push(...old.stats.delaysMs);
    }

    function openStream() {
      if (!sessionId) {
        showMessage("waiting for the chat to start (no conversation id yet)");
        return;
      }
      if (!stream) {
        stream = new EmotionStream(streamUrl(sessionId), {
          onStatus: (status) => {
            streamStatus = status;
            if (status === "refused") {
              showMessage(`emotion sensing refused: ${stream.refusal}`);
              stopDevices();
            }
            showSensing();
          },
          onEvent: (event) => { if (event.state) showState(event.state); },
        });
      }
      showMessage("");
      stream.open();
    }

    function update() {
      if (camera.on || microphone.on) openStream(); else if (stream) stream.close();
      showSensing();
    }

    function stopDevices() {
      clearInterval(frameTimer);
      frameTimer = null;
      camera.stop();
      microphone.stop();
      $(".camera-switch").checked = false;
      $(".mic-switch").checked = false;
      $(".preview").dataset.on = "false";
    }

    const sendFrame = frameSender(camera, () => stream);

    function toggle(checkbox, device, name, started, stopped) {
      return followSwitch(checkbox, device, name, { showMessage, started, stopped, changed: update });
    }

    $(".camera-switch").addEventListener("change", (event) => toggle(event.target, camera, "camera",
      () => { $(".preview").dataset.on = "true"; frameTimer = setInterval(sendFrame, 1000 / FRAMES_PER_SECOND); },
      () => { $(".preview").dataset.on = "false"; clearInterval(frameTimer); frameTimer = null; }));
    $(".mic-switch").addEventListener("change", (event) => toggle(event.target, microphone, "microphone"));

    // A new conversation (the widget restarted, or setSession): stream under the new id.
    api.onSession(() => {
      if (stream) {
        fold(stream);
        stream.close();
        stream = null;
      }
      if (camera.on || microphone.on) openStream();
    });

    async function pollState() {
      if (sessionId && data.bars !== "off" && (camera.on || microphone.on) && document.visibilityState === "visible") {
        try {
          const response = await fetch(`${service}/v1/sessions/${encodeURIComponent(sessionId)}`,
            { headers: token ? { Authorization: `Bearer ${token}` } : {} });
          if (response.ok) showState((await response.json()).state);
        } catch { /* the service is restarting: the next poll tries again */ }
      }
      setTimeout(pollState, STATE_POLL_MS);
    }
    pollState();

    api.stats = () => {
      const s = stream ? stream.stats : { framesSent: 0, faceReadings: 0, audioChunksSent: 0, audioBytesSent: 0, delaysMs: [], reconnects: 0 };
      const delays = [...totals.delaysMs, ...s.delaysMs];
      return { sessionId, sessionSource, streamStatus, refusal: stream ? stream.refusal : null,
               framesSent: totals.framesSent + s.framesSent, faceReadings: totals.faceReadings + s.faceReadings,
               audioChunksSent: totals.audioChunksSent + s.audioChunksSent,
               audioBytesSent: totals.audioBytesSent + s.audioBytesSent, reconnects: s.reconnects || 0,
               medianDelayMs: median(delays) };
    };
    showSensing();
  }

  // rasa-webchat keeps its session id in storage once its socket is connected.
  if (!sessionId) {
    const watch = () => { const found = webchatSession(); if (found) adopt(found, "rasa-webchat"); };
    watch();
    setInterval(watch, SESSION_POLL_MS);
  }
})();
