// /studio/live/{id}: the host console. Start/end, product set, one-tap pin/unpin/sold-out,
// viewers now and clicks per product (polled every few seconds).
import { api, fmtPrice, h } from './api.js';
import { mountNav } from './nav.js';
import { searchProducts } from './products.js';

const root = document.getElementById('console');
const LIVE_ID = Number(root.dataset.liveId);
const errorBox = document.getElementById('console-error');
const POLL_MS = 3000;
let session = null;
let clicksByAnchor = new Map();

function fail(err) { errorBox.textContent = err.message; }

async function refresh() {
  session = await api('GET', `/api/v1/live/${LIVE_ID}`);
  render();
}

async function refreshClicks() {
  try {
    const top = await api('GET', `/api/v1/stats/live/${LIVE_ID}/top-anchors?limit=1000`);
    clicksByAnchor = new Map(top.items.map((i) => [i.anchor_id, i.clicks]));
  } catch { /* stats not available yet */ }
}

function render() {
  const s = session;
  document.getElementById('live-title').textContent = s.title;
  document.title = `${s.title} · Live console`;
  const status = document.getElementById('live-status');
  status.textContent = s.status === 'live' ? 'LIVE' : s.status;
  status.className = `status ${s.status}`;
  document.getElementById('viewers').textContent = s.viewers ?? 0;
  const ended = s.status === 'ended';
  document.getElementById('start-live').disabled = s.status !== 'scheduled';
  document.getElementById('end-live').disabled = s.status !== 'live';
  // An ended live's set is final: no Add, no Remove (the API would answer 409); the replay instead.
  document.getElementById('add-section').hidden = ended;
  renderReplay(s);
  const streamInput = document.getElementById('stream-url');
  if (document.activeElement !== streamInput && !streamInput.dataset.dirty) streamInput.value = s.stream_url || '';
  document.getElementById('stream-form').hidden = ended;
  const pinned = new Map((s.pins || []).map((p) => [p.product_id, p]));
  let total = 0;
  for (const n of clicksByAnchor.values()) total += n;
  document.getElementById('clicks-total').textContent = total;
  document.getElementById('set-empty').hidden = s.products.length > 0;
  document.getElementById('set').replaceChildren(...s.products.map((p) => {
    const pin = pinned.get(p.product_id);
    const pinBtn = h('button', { type: 'button', class: `pin${pin ? ' on' : ''}`, 'aria-pressed': String(Boolean(pin)),
      disabled: s.status !== 'live' || p.product_status !== 'active', dataset: { action: 'pin' } }, pin ? 'Unpin' : 'Pin');
    pinBtn.addEventListener('click', () => act(() => (pin
      ? api('DELETE', `/api/v1/live/${LIVE_ID}/pins/${p.product_id}`)
      : api('POST', `/api/v1/live/${LIVE_ID}/pins`, { product_id: p.product_id }))));
    const soldBtn = h('button', { type: 'button', class: `secondary sold${pin && pin.sold_out ? ' on' : ''}`,
      'aria-pressed': String(Boolean(pin && pin.sold_out)), disabled: !pin, dataset: { action: 'sold-out' } },
    pin && pin.sold_out ? 'Back in stock' : 'Sold out');
    soldBtn.addEventListener('click', () => act(() => api('PATCH', `/api/v1/live/${LIVE_ID}/pins/${p.product_id}`,
      { sold_out: !(pin && pin.sold_out) })));
    const remove = ended ? null
      : h('button', { type: 'button', class: 'link small', disabled: Boolean(pin), title: 'Remove from the set', dataset: { action: 'remove' } }, 'Remove');
    remove?.addEventListener('click', () => act(() => api('DELETE', `/api/v1/live/${LIVE_ID}/products/${p.product_id}`)));
    return h('li', { class: `set-item${pin ? ' pinned' : ''}`, dataset: { productId: p.product_id, anchorId: p.anchor_id } },
      p.image_url ? h('img', { src: p.image_url, alt: '' }) : h('span', { class: 'noimg' }),
      h('span', { class: 'set-text' }, h('strong', {}, p.title), h('span', { class: 'muted small' }, fmtPrice(p)),
        h('span', { class: 'small clicks' }, `${clicksByAnchor.get(p.anchor_id) || 0} clicks`)),
      h('span', { class: 'set-actions' }, pinBtn, soldBtn, remove));
  }));
  const embed = `<script src="${location.origin}/v1/player.js" defer></script> <video data-shoplink-live="${LIVE_ID}" …>`;
  document.getElementById('embed-code').textContent = embed;
  document.getElementById('watch-link').href = `/watch/live/${LIVE_ID}`;
}

// Actions run one after another: a host's quick second tap (pin A, then pin B at once) is queued
// behind the first, never dropped.
let queue = Promise.resolve();
function act(fn) {
  errorBox.textContent = '';
  queue = queue.then(async () => {
    try {
      await fn();
      await refresh();
    } catch (err) {
      fail(err);
    }
  });
  return queue;
}

document.getElementById('start-live').addEventListener('click', () => act(() => api('POST', `/api/v1/live/${LIVE_ID}/start`)));
document.getElementById('end-live').addEventListener('click', () => {
  if (window.confirm('End the live for every viewer?')) act(() => api('POST', `/api/v1/live/${LIVE_ID}/end`));
});

// ---- the host's stream ----------------------------------------------------------------------
document.getElementById('stream-url').addEventListener('input', (e) => { e.target.dataset.dirty = 'true'; });
document.getElementById('stream-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = document.getElementById('stream-url');
  const streamError = document.getElementById('stream-error');
  streamError.textContent = '';
  const value = input.value.trim();
  act(async () => {
    try {
      await api('PATCH', `/api/v1/live/${LIVE_ID}`, { stream_url: value || null });
      delete input.dataset.dirty;
      root.dataset.streamSaved = value;
    } catch (err) {
      streamError.textContent = (err.details && err.details[0] && err.details[0].message) || err.message;
    }
  });
});

// ---- the replay (after the end) ---------------------------------------------------------------
let videosLoaded = false;
async function renderReplay(s) {
  const section = document.getElementById('replay-section');
  section.hidden = s.status !== 'ended';
  if (section.hidden) return;
  const attached = s.replay_video_id != null;
  document.getElementById('replay-form').hidden = attached;
  document.getElementById('replay-help').hidden = attached;
  document.getElementById('replay-done').hidden = !attached;
  document.getElementById('replay-link').href = `/watch/live/${LIVE_ID}/replay`;
  if (attached || videosLoaded) return;
  videosLoaded = true;
  const videos = (await api('GET', '/api/v1/videos?limit=200')).items.filter((v) => v.status === 'active');
  const select = document.getElementById('replay-video');
  select.replaceChildren(...videos.map((v) => h('option', { value: v.id }, `${v.title || `Video ${v.id}`} (${Math.round(v.duration_s)} s)`)));
  if (!videos.length) {
    document.getElementById('replay-error').textContent = 'Upload the recording in the studio (Videos) first, then attach it here.';
    document.getElementById('replay-submit').disabled = true;
  }
}

document.getElementById('replay-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const replayError = document.getElementById('replay-error');
  replayError.textContent = '';
  const body = { video_id: Number(document.getElementById('replay-video').value),
    offset_s: Number(document.getElementById('replay-offset').value || 0) };
  act(async () => {
    try {
      await api('POST', `/api/v1/live/${LIVE_ID}/replay`, body);
    } catch (err) {
      replayError.textContent = err.message;
    }
  });
});

const results = document.getElementById('product-results');
let seq = 0;
async function showResults() {
  const mine = ++seq;
  const items = await searchProducts(document.getElementById('product-search').value.trim());
  if (mine !== seq) return;
  const inSet = new Set((session?.products || []).map((p) => p.product_id));
  results.replaceChildren(...items.filter((p) => !inSet.has(p.id)).slice(0, 30).map((p) => {
    const add = h('button', { type: 'button', class: 'small' }, 'Add');
    add.addEventListener('click', () => act(async () => {
      await api('POST', `/api/v1/live/${LIVE_ID}/products`, { product_ids: [p.id] });
      setTimeout(showResults, 0);
    }));
    return h('li', { dataset: { productId: p.id } }, h('span', { class: 'title' }, p.title), ' ',
      h('span', { class: 'muted small' }, p.plan ? `plan “${p.plan}”` : fmtPrice(p)), ' ', add);
  }));
}
let debounce = 0;
document.getElementById('product-search').addEventListener('input', () => {
  clearTimeout(debounce);
  debounce = setTimeout(showResults, 150);
});

async function poll() {
  try {
    await refreshClicks();
    await refresh();
  } catch (err) { fail(err); }
  setTimeout(poll, POLL_MS);
}

mountNav().then(async () => {
  await poll();
  root.dataset.ready = 'true';
  if (session.status !== 'ended') showResults();
}).catch(fail);
