/*! shoplink player events: view, impression and progress, batched and sent with sendBeacon.
 *
 * Served in front of player.js in the one /v1/player.js response (src/shoplink/web/player.py).
 * The widget calls four hooks (window.__shoplinkEvents): card(video, element, code) when a card
 * element is created, play(video, ref) when a video starts playing, time(video, ref) on
 * timeupdate, and joined(video, liveId) when a live viewer connects. ref is {video: id} or
 * {live: id}.
 *
 * - impression: the card is at least 50 % visible (IntersectionObserver, which also sees
 *   elements inside a shadow root) for at least 1 s while the page is visible (Page
 *   Visibility); hiding the tab or scrolling the card out before the second is up cancels it.
 *   Once per card per page view.
 * - view: once per video or live session per page view (first play, or joining the live).
 * - progress: 25/50/75/100 % of the video's duration reached, each once per page view.
 * Events wait in a queue sent every FLUSH_MS, at MAX_BATCH events, and when the page is hidden
 * (visibilitychange / pagehide), with navigator.sendBeacon (text/plain: no CORS preflight) or
 * fetch(..., {keepalive: true}) when sendBeacon refuses. Nothing identifies the viewer: the
 * page-view id is random, and the request carries no credentials of its own.
 */
(() => {
  'use strict';
  if (window.__shoplinkEvents) return;
  const script = document.currentScript;
  const BASE = script && script.src ? script.src.replace(/\/v1\/player\.js(?:[?#].*)?$/, '') : location.origin;
  const URL_ = `${BASE}/v1/events`;
  const DWELL_MS = 1000;
  const FLUSH_MS = 5000;
  const MAX_BATCH = 20;  // the server takes up to 100 per request
  const rand = new Uint8Array(16);
  crypto.getRandomValues(rand);
  const PV = Array.from(rand, (b) => b.toString(16).padStart(2, '0')).join('');
  const queue = [];
  const sent = new Set();  // impression:code, view:video:1, progress:video:1:25
  let timer = null;

  function now(video) {
    const t = video && Number.isFinite(video.currentTime) ? video.currentTime : 0;
    return Math.round(t * 1000) / 1000;
  }

  function send(events) {
    const body = JSON.stringify({ pv: PV, events });
    let ok = false;
    try { ok = navigator.sendBeacon ? navigator.sendBeacon(URL_, body) : false; } catch (e) { ok = false; }
    if (!ok) {
      fetch(URL_, { method: 'POST', body, keepalive: true, mode: 'cors', credentials: 'omit',
        headers: { 'Content-Type': 'text/plain' } }).catch(() => {});
    }
  }

  function flush() {
    if (timer) { clearTimeout(timer); timer = null; }
    while (queue.length) send(queue.splice(0, MAX_BATCH));
  }

  function push(key, event) {
    if (sent.has(key)) return;
    sent.add(key);
    queue.push(event);
    if (queue.length >= MAX_BATCH) flush();
    else if (!timer) timer = setTimeout(flush, FLUSH_MS);
  }

  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'hidden') { flush(); pauseAll(); } else resumeAll();
  });
  window.addEventListener('pagehide', flush);

  // ---- impressions -------------------------------------------------------------------------
  const watched = new Map();  // element -> {code, video, visible, timer}
  const observer = typeof IntersectionObserver === 'function' ? new IntersectionObserver((entries) => {
    for (const entry of entries) {
      const w = watched.get(entry.target);
      if (!w) continue;
      w.visible = entry.isIntersecting && entry.intersectionRatio >= 0.5;
      if (w.visible) arm(entry.target, w); else disarm(w);
    }
  }, { threshold: [0, 0.5, 1] }) : null;

  function arm(element, w) {
    if (w.timer || document.visibilityState !== 'visible' || sent.has(`impression:${w.code}`)) return;
    w.timer = setTimeout(() => {
      w.timer = null;
      if (!w.visible || document.visibilityState !== 'visible' || !element.isConnected) return;
      push(`impression:${w.code}`, { type: 'impression', code: w.code, t: now(w.video) });
      observer.unobserve(element);
      watched.delete(element);
    }, DWELL_MS);
  }

  function disarm(w) {
    if (w.timer) { clearTimeout(w.timer); w.timer = null; }
  }

  function pauseAll() { for (const w of watched.values()) disarm(w); }
  function resumeAll() { for (const [element, w] of watched) if (w.visible) arm(element, w); }

  function card(video, element, code) {
    if (!observer || !code || sent.has(`impression:${code}`) || watched.has(element)) return;
    watched.set(element, { code: String(code), video, visible: false, timer: null });
    observer.observe(element);
  }

  // ---- views and progress ------------------------------------------------------------------
  function refKey(ref) { return ref.video != null ? `video:${ref.video}` : `live:${ref.live}`; }

  function play(video, ref) {
    const event = { type: 'view', t: now(video) };
    if (ref.video != null) event.video = Number(ref.video); else event.live = Number(ref.live);
    push(`view:${refKey(ref)}`, event);
  }

  function time(video, ref) {
    if (ref.video == null) return;
    const d = video.duration;
    if (!Number.isFinite(d) || d <= 0) return;
    const done = (video.currentTime / d) * 100;
    for (const q of [25, 50, 75, 100]) {
      // the last timeupdate may stop a few ms short of the end; "ended" counts as 100 %
      if (done >= q || (q === 100 && (video.ended || d - video.currentTime < 0.3))) {
        push(`progress:${ref.video}:${q}`, { type: 'progress', video: Number(ref.video), q, t: now(video) });
      }
    }
  }

  function joined(video, liveId) { play(video, { live: liveId }); }

  // pending(): the codes of the cards whose visible second is running; queued(): the events not
  // sent yet (for tests and debugging).
  const pending = () => [...watched.values()].filter((w) => w.timer).map((w) => w.code);
  const queued = () => queue.slice();
  window.__shoplinkEvents = { card, play, time, joined, flush, pending, queued, pageView: PV };
})();
