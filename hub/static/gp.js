// The GP's page: waiting room, admit, the call. Plain JavaScript, no build step, standard
// WebRTC and DOM APIs only (current Chrome, Edge, Firefox, Safari).
//
// The link's token is in the URL fragment (#<token>.<key>), which browsers never send to a
// server; the page sends the token as an Authorization header. The key after it is the room's:
// who is waiting and who is in front of the camera reach the hub sealed with it by the station
// (station/keys/room_seal.py), and only this page opens them (WebCrypto AES-GCM); the hub
// relays boxes it cannot read. A link without the key (the short code typed at the hub)
// shows the names only after admitting, from the data channel. The station is always the
// offerer: this page
// answers, and when the station re-dials (a new offer generation for the same room) the page
// replaces its peer connection by itself.
//
// Every text that comes from outside (names, rooms, reasons) goes in with textContent, never
// innerHTML: a name may contain markup, and it must show as typed.
"use strict";

(() => {
  // The texts come from the hub's catalogue, in the link's language, as a JSON block in the
  // page (hub/gp_texts.py): one table for the page and every other text people read.
  const T = JSON.parse(document.getElementById("gp-texts").textContent);

  // What the page sends, capped so a Raspberry Pi can decode it.
  const SEND_WIDTH = 640;
  const SEND_HEIGHT = 480;
  const SEND_FPS = 30;
  const SEND_BITRATE = 800000;
  // The answer waits this long at most for ICE gathering; later candidates are trickled.
  const GATHER_WAIT_MS = 2000;
  // Candidates gathered ahead, while the GP is in the waiting room (see warmPeer()).
  const CANDIDATE_POOL_SIZE = 1;
  // A prepared connection older than this is made again (a TURN allocation made with
  // time-limited credentials must not go stale while the GP waits).
  const WARM_MAX_AGE_MS = 4 * 60 * 1000;
  const POLL_SECONDS = 25;
  // In the call the long-poll is short, so the hub knows within seconds when this page stops
  // reaching it: the station asks the hub about that when it hears nothing from the page.
  const CALL_POLL_SECONDS = 5;
  // How often the page tells the station, over the data channel, that it is there and what it
  // sends. This is the station's sign of life when the GP sends no media at all.
  const HEARTBEAT_MS = 1000;
  // How often the page samples getStats() for the quality indicator and the media watchdog.
  const MONITOR_MS = 500;

  const lang = document.documentElement.lang === "en" ? "en" : "da";
  const locale = lang === "da" ? "da-DK" : "en-GB";
  const fragment = location.hash.length > 1 ? decodeURIComponent(location.hash.slice(1)) : "";
  const [token, roomKeyText = ""] = fragment.split(".", 2);
  const roomKey = importRoomKey(roomKeyText);
  const apiBase = new URL("../api/gp/", location.href);
  const sessionKey = "kontaktstation.gp-session." + token.slice(0, 16);

  let session = readSession();
  let version = -1;
  let room = null;
  let finished = false;
  let pc = null;
  // A peer connection made in the waiting room, already gathering its candidates; the first
  // offer after Admit is answered on it.
  let warm = null;
  let warmMadeAt = 0;
  let warmServers = "";
  // This browser's Admit is on its way to the hub (see pollLoop).
  let admitting = false;
  // How many answers were made on a prepared connection (diagnostics and the tests).
  let preparedAnswers = 0;
  let handledGeneration = 0;
  let localStream = null;
  let localMedia = null;
  let remoteStream = null;
  let statsTimer = null;
  // The station's data channel of the current peer connection (notices in, heartbeats out).
  let channel = null;
  let heartbeatTimer = null;
  // Set once the page has said goodbye (its pagehide): from then on it sends nothing that
  // the hub could take for the page being there again (see leaving()). Cleared if the page
  // is shown again from the back/forward cache.
  let gone = false;
  let shownAgain = null;
  let lastHubNotice = "";
  let lastWaiting = "";
  let quality = "unknown";
  let firstFrameMarked = false;

  const $ = (id) => document.getElementById(id);

  function format(text, values) {
    return text.replace(/\{(\w+)\}/g, (_, key) => (key in values ? String(values[key]) : ""));
  }

  function readSession() {
    try {
      return sessionStorage.getItem(sessionKey);
    } catch (_) {
      return null;
    }
  }

  function storeSession(value) {
    session = value;
    try {
      sessionStorage.setItem(sessionKey, value);
    } catch (_) {
      // Private mode without storage: the call works, a reload just cannot rejoin it.
    }
  }

  function formatDateTime(iso) {
    return new Intl.DateTimeFormat(locale, { dateStyle: "long", timeStyle: "short" }).format(
      new Date(iso),
    );
  }

  function formatBirthDate(iso) {
    const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso);
    if (!match) return iso;
    const date = new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])));
    return new Intl.DateTimeFormat(locale, { dateStyle: "long", timeZone: "UTC" }).format(date);
  }

  function setView(name) {
    if (name !== "waiting" && document.body.dataset.view === "waiting") announceWaiting(false);
    document.body.dataset.view = name;
    $("view-message").hidden = !["loading", "message", "ended", "error"].includes(name);
    $("view-waiting").hidden = name !== "waiting";
    $("view-call").hidden = name !== "call";
  }

  function showMessage(text, detail, view) {
    $("message").textContent = text;
    $("message-detail").textContent = detail || "";
    setView(view || "message");
  }

  function errorText(code) {
    return T.errors[code] || T.errors.generic;
  }

  function applyStaticStrings() {
    document.documentElement.lang = lang;
    document.title = T.title + " – KontaktStation";
    $("title").textContent = T.title;
    $("message").textContent = T.loading;
    $("waiting-title").textContent = T.stationWaiting;
    $("admit").textContent = T.admit;
    $("preview-label").textContent = T.preview;
    $("mute").textContent = T.mute;
    $("camera").textContent = T.cameraOff;
    $("audio-only").textContent = T.audioOnlyButton;
    $("hangup").textContent = T.hangup;
    $("private-notice").textContent = T.private;
    $("reconnecting").textContent = T.reconnecting;
  }

  // -- the hub -------------------------------------------------------------------------------

  async function api(method, path, body, timeoutMs) {
    const headers = { Authorization: "Bearer " + token };
    if (session) headers["X-GP-Session"] = session;
    const init = { method, headers, cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    // These two must reach the hub even while the page is being closed.
    if (method === "POST") init.keepalive = path === "hangup" || path === "leave";
    // A request stuck on a connection that died in a network outage is given up, so the
    // page notices the network is back within seconds, not after TCP's long back-off.
    if (timeoutMs && typeof AbortSignal !== "undefined" && AbortSignal.timeout) {
      init.signal = AbortSignal.timeout(timeoutMs);
    }
    return fetch(new URL(path, apiBase), init);
  }

  async function errorBody(response) {
    try {
      const body = await response.json();
      return body && typeof body.code === "string" ? body : { code: "generic" };
    } catch (_) {
      return { code: "generic" };
    }
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function pollLoop() {
    let failures = 0;
    while (!finished) {
      if (gone) {
        await new Promise((resolve) => (shownAgain = resolve));
        continue;
      }
      const sentWith = session;
      let response;
      let snapshot = null;
      try {
        const wait = document.body.dataset.view === "call" ? CALL_POLL_SECONDS : POLL_SECONDS;
        const path = `room?since=${version}&timeout=${wait}`;
        response = await api("GET", path, undefined, (wait + 5) * 1000);
        // Read inside the try: the time limit covers the body too.
        if (response.ok) snapshot = await response.json();
      } catch (_) {
        failures += 1;
        if (document.body.dataset.view !== "call") showMessage(T.networkTrouble);
        await sleep(Math.min(1000 * failures, 5000));
        continue;
      }
      failures = 0;
      if (!response.ok) {
        const body = await errorBody(response);
        if (body.code === "link_not_yet_valid" && body.valid_from) {
          notYetValid(body.valid_from);
        } else {
          finish(body.code);
        }
        return;
      }
      // A poll sent before this browser was admitted describes the room as seen by a
      // stranger ("admitted elsewhere"); ask again with the session instead. So does one
      // answered while this browser's Admit is on its way (the hub admitted it, the page has
      // not read the session yet): the Admit's own answer shows the room.
      if (admitting) {
        await sleep(100);
        continue;
      }
      if (sentWith !== session) continue;
      if (snapshot.version >= version) {
        version = snapshot.version;
        render(snapshot);
      }
    }
  }

  function notYetValid(validFrom) {
    showMessage(format(errorText("link_not_yet_valid"), { time: formatDateTime(validFrom) }));
    const wait = new Date(validFrom).getTime() - Date.now();
    // Re-check at the opening time (or every ten minutes until then; timers drift in sleep).
    setTimeout(pollLoop, Math.max(1000, Math.min(wait + 1000, 10 * 60 * 1000)));
  }

  // -- what the page shows -------------------------------------------------------------------

  function render(snapshot) {
    room = snapshot;
    if (finished) return;
    if (snapshot.state === "booked") {
      showMessage(T.booked, format(T.bookedDetail, { time: formatDateTime(snapshot.starts_at) }));
    } else if (snapshot.state === "waiting") {
      if (!pc) showWaiting(snapshot.waiting);
    } else if (snapshot.state === "admitted") {
      if (snapshot.admitted_by_you) {
        showCall();
        applyHubNotices(snapshot);
        if (snapshot.offer && snapshot.offer.generation > handledGeneration) {
          acceptOffer(snapshot.offer);
        } else if (!pc) {
          // Admitted, but the offer was answered before a reload: the station re-dials.
          setReconnecting(true);
        }
      } else if (snapshot.admitted_elsewhere) {
        closePeer();
        closeWarm();
        // Another browser has the call: this one must not keep the camera and mic on.
        stopLocalMedia();
        showMessage(errorText("room_already_admitted"));
      }
    }
  }

  // A GP working in another window hears and sees that the station is waiting: the tab's
  // title says so (with a mark the tab strip shows) and a short two-note chime plays once each
  // time the station starts waiting. Browsers let a page play sound only after the GP has
  // touched it (or while it captures the camera, as the waiting room does); a chime they
  // refuse is counted, not retried.
  const chime = { played: 0, refused: 0 };
  let announced = false;

  function announceWaiting(on) {
    document.title = (on ? "● " + T.stationWaiting + " – " : "") + T.title + " – KontaktStation";
    if (!on) {
      announced = false;
      return;
    }
    if (announced) return;
    announced = true;
    playChime();
  }

  function playChime() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    let context;
    try {
      context = new Context();
    } catch (e) {
      chime.refused += 1;
      return;
    }
    const start = () => {
      const now = context.currentTime;
      for (const [frequency, at] of [[880, 0], [660, 0.25]]) {
        const tone = context.createOscillator();
        const level = context.createGain();
        tone.frequency.value = frequency;
        level.gain.setValueAtTime(0.0001, now + at);
        level.gain.exponentialRampToValueAtTime(0.3, now + at + 0.02);
        level.gain.exponentialRampToValueAtTime(0.0001, now + at + 0.22);
        tone.connect(level).connect(context.destination);
        tone.start(now + at);
        tone.stop(now + at + 0.25);
      }
      chime.played += 1;
      setTimeout(() => context.close(), 1000);
    };
    if (context.state === "running") {
      start();
    } else {
      context.resume().then(
        () => (context.state === "running" ? start() : (chime.refused += 1, context.close())),
        () => { chime.refused += 1; context.close(); },
      );
    }
  }

  // -- the sealed round ----------------------------------------------------------------------

  function fromBase64Url(text) {
    const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  }

  function importRoomKey(text) {
    // WebCrypto exists only in a secure context (https, or the loopback address).
    if (!/^[A-Za-z0-9_-]{43}$/.test(text) || !(window.crypto && crypto.subtle)) {
      return Promise.resolve(null);
    }
    return crypto.subtle
      .importKey("raw", fromBase64Url(text), "AES-GCM", false, ["decrypt"])
      .catch(() => null);
  }

  // A box the station sealed for this page ({sealed: "v1.<nonce+ciphertext>"}), opened; null
  // without the key or when it does not open (then nothing of it is shown).
  async function openSealed(box, purpose) {
    const key = await roomKey;
    if (!key || !box || typeof box.sealed !== "string" || !box.sealed.startsWith("v1.")) {
      return null;
    }
    try {
      const bytes = fromBase64Url(box.sealed.slice(3));
      const aad = new TextEncoder().encode("kontaktstation room v1|" + purpose);
      const plain = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: bytes.slice(0, 12), additionalData: aad },
        key,
        bytes.slice(12),
      );
      return JSON.parse(new TextDecoder().decode(plain));
    } catch (error) {
      return null;
    }
  }

  async function showWaiting(sealedWaiting) {
    setView("waiting");
    announceWaiting(true);
    prepareInWaitingRoom();
    const key = JSON.stringify(sealedWaiting);
    if (key === lastWaiting) return;
    lastWaiting = key;
    const started = performance.now();
    const waiting = await openSealed(sealedWaiting, "waiting");
    const opened = performance.now();
    if (key !== lastWaiting) return; // a newer round arrived meanwhile
    const note = $("residents-note");
    note.textContent = sealedWaiting && !waiting ? T.namesAfterAdmit : "";
    note.hidden = !note.textContent;
    $("residents").replaceChildren(...((waiting && waiting.residents) || []).map(residentItem));
    if (waiting) {
      // For bench/gp_round.py: opening the box, and opening plus drawing the list.
      performance.measure("round-opened", { start: started, end: opened });
      performance.measure("round-shown", { start: started, end: performance.now() });
    }
  }

  function residentItem(resident) {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = resident.display_name;
    item.append(name);
    addDetail(item, T.born, resident.birth_date ? formatBirthDate(resident.birth_date) : null);
    addDetail(item, T.room, resident.room);
    addDetail(item, T.reason, resident.reason);
    return item;
  }

  // The round during the call, from the data channel (the only way a GP who came by the
  // short code learns it); the resident in front of the camera is marked.
  function showRound(message) {
    const residents = Array.isArray(message.residents) ? message.residents.slice(0, 20) : [];
    const list = $("call-round");
    list.replaceChildren(...residents.filter((r) => r && typeof r.display_name === "string")
      .map(residentItem));
    list.hidden = list.children.length < 2;
    markCurrent();
  }

  let currentPosition = 0;
  function markCurrent() {
    [...$("call-round").children].forEach((item, index) => {
      if (index + 1 === currentPosition) item.setAttribute("aria-current", "true");
      else item.removeAttribute("aria-current");
    });
  }

  function addDetail(item, label, value) {
    if (!value) return;
    const line = document.createElement("span");
    line.className = "detail";
    line.textContent = label + ": " + value;
    item.append(line);
  }

  function showCall() {
    if (document.body.dataset.view !== "call") setView("call");
  }

  function setReconnecting(on, text) {
    const element = $("reconnecting");
    element.textContent = text || T.reconnecting;
    element.hidden = !on;
    document.body.dataset.media = on ? "stalled" : "flowing";
  }

  function setWarning(text) {
    for (const id of ["media-warning", "preview-warning"]) {
      const element = $(id);
      element.textContent = text || "";
      element.hidden = !text;
    }
  }

  function setPrivate(on) {
    $("private-notice").hidden = !on;
  }

  function showCurrentResident(message) {
    if (typeof message.display_name !== "string" || !message.display_name) return;
    let text = T.inFrontNow + ": " + message.display_name.slice(0, 120);
    if (Number.isInteger(message.position) && Number.isInteger(message.of) && message.of > 1) {
      text += ` (${message.position} ${T.of} ${message.of})`;
    }
    const element = $("current-resident");
    element.textContent = text;
    element.hidden = false;
    currentPosition = Number.isInteger(message.position) ? message.position : 0;
    markCurrent();
  }

  // The data channel is the live path for notices; the hub's copy is the fallback, applied
  // only when it changes so it never overrides a newer data-channel message with old news.
  function applyHubNotices(snapshot) {
    const key = JSON.stringify([snapshot.private, snapshot.current_resident]);
    if (key === lastHubNotice) return;
    lastHubNotice = key;
    setPrivate(Boolean(snapshot.private));
    if (snapshot.current_resident) {
      openSealed(snapshot.current_resident, "current_resident").then((opened) => {
        if (opened && key === lastHubNotice) showCurrentResident(opened);
      });
    }
  }

  function handleNotice(message) {
    if (!message || typeof message !== "object") return;
    if (message.type === "current_resident") showCurrentResident(message);
    else if (message.type === "round") showRound(message);
    else if (message.type === "private") setPrivate(true);
    else if (message.type === "staff_present") setPrivate(false);
    else if (message.type === "call_ended") finish("call_ended");
    else if (message.type === "audio_only") {
      const reason = message.reason === "poor_connection" ? "poor_connection" : "choice";
      // "paused": false while the station tries video again (the label stays meanwhile).
      setAudioOnly(message.on === true ? reason : null, message.paused !== false);
    }
  }

  // -- audio only ----------------------------------------------------------------------------

  // The station decides (its staff, this page or the link chose it) and says so on the data
  // channel; this page pauses its own video, hides the station's, and labels both.
  let audioOnly = null; // null (video), "choice" or "poor_connection"
  let videoPaused = false;

  function setAudioOnly(reason, paused) {
    audioOnly = reason;
    videoPaused = reason !== null && paused;
    const label = $("audio-only-notice");
    label.textContent = reason === "poor_connection" ? T.audioOnlyPoor : T.audioOnly;
    label.hidden = reason === null;
    document.body.dataset.audioOnly = videoPaused ? reason : "off";
    const button = $("audio-only");
    button.textContent = reason === "choice" ? T.showVideo : T.audioOnlyButton;
    button.setAttribute("aria-pressed", String(reason === "choice"));
    if (pc) pauseVideo(pc, videoPaused);
  }

  async function pauseVideo(peer, paused) {
    for (const sender of peer.getSenders()) {
      if (!sender.track || sender.track.kind !== "video") continue;
      const parameters = sender.getParameters();
      if (!parameters.encodings || parameters.encodings.length === 0) continue;
      for (const encoding of parameters.encodings) encoding.active = !paused;
      try {
        await sender.setParameters(parameters);
      } catch (error) {
        console.warn("could not pause the sent video", error);
      }
    }
  }

  function toggleAudioOnly() {
    // The station answers with the state both sides show (a channel that is not open: nothing).
    tell({ type: "audio_only", on: audioOnly !== "choice" });
  }

  // -- local media ---------------------------------------------------------------------------

  async function startLocalMedia() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      setWarning(T.noMedia + " " + T.deviceHint);
      return null;
    }
    const audio = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
    const video = {
      width: { ideal: SEND_WIDTH, max: 1280 },
      height: { ideal: SEND_HEIGHT, max: 720 },
      frameRate: { ideal: SEND_FPS, max: SEND_FPS },
    };
    let stream = null;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio, video });
    } catch (_) {
      try {
        stream = await navigator.mediaDevices.getUserMedia({ audio });
        setWarning(T.noVideo + " " + T.permissionHint);
      } catch (_) {
        stream = null;
        setWarning(T.noMedia + " " + T.permissionHint + " " + T.deviceHint);
      }
    }
    if (stream && finished) {
      // The call ended while the browser was still asking for the camera.
      for (const track of stream.getTracks()) track.stop();
      return null;
    }
    localStream = stream;
    if (localStream) {
      for (const track of localStream.getTracks()) {
        track.enabled = track.kind === "audio" ? !muted : !cameraOff;
      }
      $("self-video").srcObject = localStream;
      const hasVideo = localStream.getVideoTracks().length > 0;
      $("preview-video").srcObject = hasVideo ? localStream : null;
      $("preview").hidden = !hasVideo;
    } else {
      $("preview").hidden = true;
    }
    return localStream;
  }

  function stopLocalMedia() {
    if (localStream) for (const track of localStream.getTracks()) track.stop();
    // The video elements keep their (now ended) stream: they show black, nothing live.
    localStream = null;
    localMedia = null;
  }

  // In the waiting room the camera and microphone start (the GP sees themselves, and a
  // refused permission shows now, not after the resident is connected), and a peer connection
  // starts gathering its ICE candidates. Admit then only has to answer. Nothing here talks to
  // the station: the offer reaches this page only after Admit, so the station cannot connect
  // before the GP lets it in.
  function prepareInWaitingRoom() {
    if (finished) return;
    if (!localMedia) localMedia = startLocalMedia();
    if (pc) return;
    keepWarm();
  }

  // One prepared connection, made again when the hub's ICE servers changed or it grew old. In
  // the waiting room it serves the first offer; while the call flows it is made for the next
  // one, so when the station re-dials the answer finds its candidates gathered (issue 18 item
  // 4: both sides of a re-dial start prepared).
  function keepWarm() {
    if (finished) return;
    if (warm && !warmStillGood()) closeWarm();
    if (!warm) {
      warm = warmPeer();
      warmMadeAt = performance.now();
      warmServers = currentServers();
    }
  }

  function currentServers() {
    return JSON.stringify((room && room.ice_servers) || []);
  }

  function warmStillGood() {
    return (
      warm !== null &&
      warm.signalingState === "stable" &&
      warm.connectionState !== "closed" &&
      warmServers === currentServers() &&
      performance.now() - warmMadeAt <= WARM_MAX_AGE_MS
    );
  }

  function peerConfiguration(poolSize) {
    return {
      iceServers: (room && room.ice_servers) || [],
      bundlePolicy: "max-bundle",
      iceCandidatePoolSize: poolSize,
    };
  }

  // A peer connection with a candidate pool gathers (host, and STUN/TURN allocations from the
  // hub's list) as soon as it is made, before any description exists; the answer made on it
  // later finds its candidates ready instead of waiting for gathering.
  function warmPeer() {
    try {
      return new RTCPeerConnection(peerConfiguration(CANDIDATE_POOL_SIZE));
    } catch (error) {
      console.warn("could not prepare a peer connection", error);
      return null;
    }
  }

  function closeWarm() {
    if (warm) warm.close();
    warm = null;
  }

  // -- the call ------------------------------------------------------------------------------

  async function admit() {
    const button = $("admit");
    button.disabled = true;
    performance.mark("gp-admit");
    // Normally started in the waiting room already; the answer needs the tracks.
    if (!localMedia) localMedia = startLocalMedia();
    let response;
    admitting = true;
    try {
      response = await api("POST", "admit");
    } catch (_) {
      admitting = false;
      button.disabled = false;
      showMessage(T.networkTrouble);
      return;
    }
    if (!response.ok) {
      admitting = false;
      const body = await errorBody(response);
      if (body.code === "station_not_waiting") {
        button.disabled = false;
        return;
      }
      finish(body.code);
      return;
    }
    let body;
    try {
      body = await response.json();
    } finally {
      admitting = false;
    }
    storeSession(body.session);
    if (body.room.version >= version) {
      version = body.room.version;
      render(body.room);
    }
  }

  function closePeer() {
    stopMonitoring();
    channel = null;
    if (pc) {
      const old = pc;
      pc = null;
      old.ontrack = null;
      old.ondatachannel = null;
      old.onicecandidate = null;
      old.onconnectionstatechange = null;
      old.close();
    }
  }

  function gatheringDone(peer, ms) {
    if (peer.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        peer.removeEventListener("icegatheringstatechange", check);
        resolve();
      };
      const check = () => {
        if (peer.iceGatheringState === "complete") done();
      };
      const timer = setTimeout(done, ms);
      peer.addEventListener("icegatheringstatechange", check);
    });
  }

  // getUserMedia's constraints ask for 640x480 at 30 fps at most; this caps what is *sent*
  // too (a camera may ignore "ideal"), so the station's decoder is never overrun.
  async function capSending(peer) {
    for (const sender of peer.getSenders()) {
      if (!sender.track || sender.track.kind !== "video") continue;
      const parameters = sender.getParameters();
      // Some browsers list no encodings before negotiation; the constraints still apply.
      if (!parameters.encodings || parameters.encodings.length === 0) continue;
      const width = sender.track.getSettings().width || SEND_WIDTH;
      const scale = width > SEND_WIDTH ? width / SEND_WIDTH : 1;
      for (const encoding of parameters.encodings) {
        encoding.maxBitrate = SEND_BITRATE;
        encoding.maxFramerate = SEND_FPS;
        encoding.scaleResolutionDownBy = scale;
      }
      try {
        await sender.setParameters(parameters);
      } catch (error) {
        console.warn("could not cap the sent video", error);
      }
    }
  }

  function trickle(generation, candidate) {
    const body = candidate
      ? {
          generation,
          candidate: candidate.candidate,
          sdpMid: candidate.sdpMid,
          sdpMLineIndex: candidate.sdpMLineIndex,
        }
      : { generation, candidate: "" };
    api("POST", "candidates", body).catch(() => {});
  }

  function watchFirstFrame(video) {
    if (firstFrameMarked) return;
    const mark = () => {
      if (firstFrameMarked) return;
      firstFrameMarked = true;
      performance.mark("gp-first-remote-frame");
    };
    if ("requestVideoFrameCallback" in video) video.requestVideoFrameCallback(mark);
    else video.addEventListener("loadeddata", mark, { once: true });
  }

  async function acceptOffer(offer) {
    handledGeneration = offer.generation;
    // The answer must carry the GP's tracks (the station cannot renegotiate), so the camera
    // and microphone come first; after a reload this is where they are started.
    if (!localMedia) localMedia = startLocalMedia();
    await localMedia;
    if (finished || handledGeneration !== offer.generation) return;
    closePeer();
    // The waiting room's prepared connection serves the first offer (a fresh one with its
    // candidates not yet used); a re-dial gets a new one.
    const prepared = warmStillGood();
    let peer = warm;
    warm = null;
    if (prepared) {
      preparedAnswers += 1;
    } else {
      if (peer) peer.close();
      peer = new RTCPeerConnection(peerConfiguration(0));
    }
    pc = peer;
    let answerSdp = null;
    const early = [];
    let trickled = false;
    remoteStream = new MediaStream();
    const remoteVideo = $("remote-video");
    remoteVideo.srcObject = remoteStream;
    watchFirstFrame(remoteVideo);
    setReconnecting(true, T.connecting);

    peer.ontrack = (event) => {
      if (pc !== peer) return;
      remoteStream.addTrack(event.track);
      remoteVideo.play().catch(() => {});
    };
    peer.ondatachannel = (event) => {
      if (pc !== peer) return;
      channel = event.channel;
      event.channel.onopen = () => {
        if (pc === peer) tellMedia();
      };
      if (event.channel.readyState === "open") tellMedia();
      event.channel.onmessage = (message) => {
        if (typeof message.data !== "string" || message.data.length > 4096) return;
        try {
          handleNotice(JSON.parse(message.data));
        } catch (_) {
          // Not JSON: ignored; the station only sends JSON objects.
        }
      };
    };
    peer.onconnectionstatechange = () => {
      if (pc !== peer) return;
      if (peer.connectionState === "failed" || peer.connectionState === "disconnected") {
        setReconnecting(true);
      }
    };
    peer.onicecandidate = (event) => {
      if (pc !== peer) return;
      if (answerSdp === null) {
        early.push(event.candidate);
        return;
      }
      if (event.candidate || trickled) trickle(offer.generation, event.candidate);
      if (event.candidate) trickled = true;
    };

    try {
      await peer.setRemoteDescription({ type: "offer", sdp: offer.sdp });
      if (localStream) {
        for (const track of localStream.getTracks()) {
          track.enabled = track.kind === "audio" ? !muted : !cameraOff;
          peer.addTrack(track, localStream);
        }
      }
      await peer.setLocalDescription(await peer.createAnswer());
      await capSending(peer);
      if (videoPaused) await pauseVideo(peer, true);
      await gatheringDone(peer, GATHER_WAIT_MS);
      if (pc !== peer) return;
      answerSdp = peer.localDescription.sdp;
      const response = await api("POST", "answer", {
        generation: offer.generation,
        type: "answer",
        sdp: answerSdp,
      });
      if (pc !== peer) return;
      if (!response.ok) {
        const body = await errorBody(response);
        if (body.code !== "generation_stale") finish(body.code);
        return;
      }
      // Candidates found after the answer was read are trickled for the station.
      for (const candidate of early) {
        if (candidate && !answerSdp.includes(candidate.candidate)) {
          trickle(offer.generation, candidate);
          trickled = true;
        }
      }
      startMonitoring(peer);
    } catch (error) {
      console.error("could not answer the station's offer", error);
      if (pc === peer) setReconnecting(true);
    }
  }

  // -- connection quality and the media watchdog ---------------------------------------------

  function summarize(report) {
    let rtt = null;
    let framesDecoded = 0;
    let audioPackets = 0;
    let packetsReceived = 0;
    let packetsLost = 0;
    let fps = null;
    let selectedPair = null;
    report.forEach((stats) => {
      if (stats.type === "transport" && stats.selectedCandidatePairId) {
        selectedPair = stats.selectedCandidatePairId;
      }
    });
    report.forEach((stats) => {
      const kind = stats.kind || stats.mediaType;
      if (stats.type === "candidate-pair") {
        const chosen = selectedPair ? stats.id === selectedPair : stats.nominated || stats.selected;
        if (chosen && stats.state === "succeeded" && typeof stats.currentRoundTripTime === "number") {
          rtt = stats.currentRoundTripTime;
        }
      } else if (stats.type === "inbound-rtp") {
        packetsReceived += stats.packetsReceived || 0;
        packetsLost += Math.max(0, stats.packetsLost || 0);
        if (kind === "video") {
          framesDecoded += stats.framesDecoded || 0;
          if (typeof stats.framesPerSecond === "number") fps = stats.framesPerSecond;
        } else if (kind === "audio") {
          audioPackets += stats.packetsReceived || 0;
        }
      }
    });
    return { rtt, framesDecoded, audioPackets, packetsReceived, packetsLost, fps };
  }

  function grade(rtt, loss, fps) {
    if ((rtt !== null && rtt > 0.4) || loss > 0.08 || (fps !== null && fps < 10)) return "poor";
    if ((rtt !== null && rtt > 0.15) || loss > 0.02 || (fps !== null && fps < 20)) return "fair";
    return "good";
  }

  function showQuality(value) {
    quality = value;
    const element = $("quality");
    element.dataset.quality = value;
    element.textContent = value === "unknown" ? "" : `${T.quality}: ${T[value]}`;
    element.hidden = value === "unknown";
  }

  function startMonitoring(peer) {
    stopMonitoring();
    const watchdogMs = ((room && room.media_watchdog_seconds) || 4) * 1000;
    let previous = null;
    let lastProgress = performance.now();
    let flowing = false;
    statsTimer = setInterval(async () => {
      if (pc !== peer) return;
      let sample = null;
      try {
        sample = summarize(await peer.getStats());
      } catch (_) {
        // A peer connection the station closed has no stats: that is silence too.
      }
      if (pc !== peer) return;
      const now = performance.now();
      const progress = sample ? sample.framesDecoded + sample.audioPackets : -1;
      if (previous !== null && progress > previous.progress) {
        lastProgress = now;
        if (!flowing || !$("reconnecting").hidden) setReconnecting(false);
        flowing = true;
        keepWarm();
      } else if (now - lastProgress > watchdogMs || peer.connectionState === "closed") {
        // Nothing arrives: say so at once. The station notices too and re-dials (it is the
        // offerer); this page takes the new offer without anyone pressing anything.
        setReconnecting(true);
        showQuality("poor");
      }
      if (sample && previous && previous.sample && now - lastProgress <= watchdogMs) {
        const received = sample.packetsReceived - previous.sample.packetsReceived;
        const lost = sample.packetsLost - previous.sample.packetsLost;
        const loss = received + lost > 0 ? Math.max(0, lost) / (received + lost) : 0;
        showQuality(grade(sample.rtt, loss, videoPaused ? null : sample.fps));
      }
      previous = { sample, progress };
    }, MONITOR_MS);
  }

  function stopMonitoring() {
    if (statsTimer !== null) clearInterval(statsTimer);
    statsTimer = null;
  }

  // -- telling the station -------------------------------------------------------------------

  // What this page sends now: a live, enabled camera (video) and microphone (audio) track. The
  // station judges frozen video only while the GP says video is on, and keeps a call without
  // media alive on these heartbeats instead of re-dialling for the missing media.
  function mediaState() {
    const tracks = localStream ? localStream.getTracks() : [];
    const sending = (kind) =>
      tracks.some((t) => t.kind === kind && t.readyState === "live" && t.enabled);
    return { video: sending("video"), audio: sending("audio") };
  }

  function tell(message) {
    if (!channel || channel.readyState !== "open") return false;
    try {
      channel.send(JSON.stringify(message));
      return true;
    } catch (_) {
      return false;
    }
  }

  function tellMedia() {
    tell({ type: "gp_alive", ...mediaState() });
  }

  // The tab is being closed (or reloaded, or navigated away): say so on both paths, so the
  // station does not take the silence for a network problem. The data channel is the fast
  // path; the hub's copy (a keepalive request, which outlives the page) covers a channel that
  // is not open. A reload comes back in seconds and simply rejoins.
  //
  // The goodbye wakes this page's own long-poll at the hub; a page that then polled again
  // (it still runs for a moment after pagehide) would be taken for a reload and undo its
  // goodbye. So polling stops here, and resumes only if the page is shown again.
  function leaving() {
    if (finished || !session || document.body.dataset.view !== "call") return;
    gone = true;
    tell({ type: "gp_leaving" });
    api("POST", "leave").catch(() => {});
  }

  function shownFromCache(event) {
    if (!event.persisted || !gone) return;
    gone = false;
    if (shownAgain !== null) shownAgain();
    shownAgain = null;
  }

  // -- controls and the end ------------------------------------------------------------------

  let muted = false;
  let cameraOff = false;

  function toggleMute() {
    muted = !muted;
    if (localStream) for (const track of localStream.getAudioTracks()) track.enabled = !muted;
    $("mute").textContent = muted ? T.unmute : T.mute;
    $("mute").setAttribute("aria-pressed", String(muted));
    tellMedia();
  }

  function toggleCamera() {
    cameraOff = !cameraOff;
    if (localStream) for (const track of localStream.getVideoTracks()) track.enabled = !cameraOff;
    $("camera").textContent = cameraOff ? T.cameraOn : T.cameraOff;
    $("camera").setAttribute("aria-pressed", String(cameraOff));
    tellMedia();
  }

  async function hangup() {
    $("hangup").disabled = true;
    closePeer();
    try {
      await api("POST", "hangup");
    } catch (_) {
      // The call is over here either way; the station's watchdog notices the silence.
    }
    finish("you_ended");
  }

  function finish(code) {
    if (finished) return;
    finished = true;
    if (heartbeatTimer !== null) clearInterval(heartbeatTimer);
    heartbeatTimer = null;
    closePeer();
    closeWarm();
    stopLocalMedia();
    showQuality("unknown");
    const ended = ["you_ended", "call_ended"].includes(code);
    showMessage(errorText(code), "", ended ? "ended" : "error");
  }

  function start() {
    applyStaticStrings();
    $("admit").addEventListener("click", admit);
    $("mute").addEventListener("click", toggleMute);
    $("camera").addEventListener("click", toggleCamera);
    $("audio-only").addEventListener("click", toggleAudioOnly);
    $("hangup").addEventListener("click", hangup);
    // Opening another appointment's link in this tab changes only the fragment, which does
    // not reload the page by itself; start over for the new link.
    window.addEventListener("hashchange", () => location.reload());
    window.addEventListener("pagehide", leaving);
    window.addEventListener("pageshow", shownFromCache);
    heartbeatTimer = setInterval(tellMedia, HEARTBEAT_MS);
    if (typeof RTCPeerConnection === "undefined") {
      finish("unsupported");
      return;
    }
    if (!token) {
      finish("unknown_link");
      return;
    }
    setView("loading");
    pollLoop();
  }

  // A read-only view for diagnostics (and the browser tests): the current peer connection
  // and the quality grade. Nothing here can change the call.
  window.kontaktGp = Object.freeze({
    peerConnection: () => pc,
    localStream: () => localStream,
    quality: () => quality,
    chimes: () => ({ ...chime }),
    preparedAnswers: () => preparedAnswers,
    nextPrepared: () => warm !== null,
  });

  start();
})();
