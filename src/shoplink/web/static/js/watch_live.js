// /watch/live/{id}: plays the host's stream (set in the console) under the widget's cards.
// HLS (.m3u8) through hls.js (web/node_modules, served from /vendor/hls.js/) where Media Source
// Extensions exist, else natively (Safari, iOS); any other URL (an MP4/WebM) natively.
const video = document.getElementById('viewer-video');
const LIVE_ID = video.dataset.shoplinkLive;
const statusEl = document.getElementById('stream-status');
const POLL_MS = 10000;
let current = null;
let hls = null;

function say(text) { statusEl.textContent = text; }

function isHls(url) {
  try { return /\.m3u8$/i.test(new URL(url).pathname); } catch { return false; }
}

function play(url) {
  if (!url || url === current) return;
  current = url;
  if (hls) { hls.destroy(); hls = null; }
  const Hls = window.Hls;
  if (isHls(url) && Hls && Hls.isSupported()) {
    // No worker: it would start from a blob: URL, which the page's CSP (script-src 'self') refuses.
    hls = new Hls({ enableWorker: false, lowLatencyMode: true });
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal) return;
      say('The stream cannot be played right now; it may not have started yet.');
      if (data.type === Hls.ErrorTypes.NETWORK_ERROR) setTimeout(() => hls && hls.startLoad(), 5000);
      else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
    });
    hls.on(Hls.Events.MANIFEST_PARSED, () => say(''));
    hls.loadSource(url);
    hls.attachMedia(video);
    video.dataset.player = 'hls.js';
  } else {
    video.src = url;
    video.dataset.player = 'native';
  }
  video.play().catch(() => { /* autoplay refused: the controls are there */ });
}

video.addEventListener('error', () => { if (!hls && current) say('The stream cannot be played in this browser.'); });

/** Until the host sets a stream (or the live ends), ask now and then. */
async function poll() {
  try {
    const r = await fetch(`/v1/live/${encodeURIComponent(LIVE_ID)}`, { cache: 'no-store' });
    if (r.ok) {
      const s = await r.json();
      if (s.stream_url) { play(s.stream_url); return; }
      if (s.status === 'ended') return;
    }
  } catch { /* offline: try again */ }
  say('Waiting for the host\u2019s stream\u2026');
  setTimeout(poll, POLL_MS);
}

if (video.dataset.streamUrl) play(video.dataset.streamUrl);
else poll();
