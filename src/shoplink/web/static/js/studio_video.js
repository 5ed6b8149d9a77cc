// /studio/videos/{id}: the timeline editor. Scene cuts and thumbnails, anchors as draggable bars,
// range selection that snaps to cuts, a product picker, each anchor's link and QR code.
import { api, ApiError, fmtPrice, fmtTime, h, showError } from './api.js';
import { mountNav } from './nav.js';
import { searchProducts } from './products.js';

const root = document.getElementById('studio');
const VIDEO_ID = Number(root.dataset.videoId);
const player = document.getElementById('player');
const timeline = document.getElementById('timeline');
const lanesEl = document.getElementById('lanes');
const selectionEl = document.getElementById('selection');
const form = document.getElementById('anchor-form');
const formError = document.getElementById('form-error');
const timelineError = document.getElementById('timeline-error');
const results = document.getElementById('product-results');
const MAX_THUMBS = 24;

const state = {
  video: null, duration: 0, cuts: [], anchors: [], products: new Map(),
  editing: null, product: null, position: null,
};

// ---- time <-> pixels, snapping ----------------------------------------------------------------
const pct = (t) => `${(100 * t / state.duration).toFixed(4)}%`;
function timeAt(clientX) {
  const r = timeline.getBoundingClientRect();
  return Math.min(state.duration, Math.max(0, ((clientX - r.left) / r.width) * state.duration));
}
function snapTime(t) {
  if (!document.getElementById('snap').checked) return Math.round(t * 100) / 100;
  const pxTolerance = (12 / timeline.getBoundingClientRect().width) * state.duration;
  const tolerance = Math.max(0.25, pxTolerance);
  let best = null;
  for (const c of [0, ...state.cuts, state.duration]) {
    if (Math.abs(c - t) <= tolerance && (best === null || Math.abs(c - t) < Math.abs(best - t))) best = c;
  }
  return Math.round((best ?? t) * 100) / 100;
}

// ---- loading ----------------------------------------------------------------------------------
async function loadAnchors() {
  const [own, timelineBody] = await Promise.all([
    api('GET', `/api/v1/videos/${VIDEO_ID}/anchors`),
    fetch(`/v1/videos/${VIDEO_ID}/anchors`, { cache: 'no-store' }).then((r) => (r.ok ? r.json() : { anchors: [] })),
  ]);
  for (const a of timelineBody.anchors || []) if (a.product) state.products.set(a.product.id, a.product);
  state.anchors = own.items.filter((a) => a.status === 'active').sort((a, b) => a.start_s - b.start_s);
  render();
}

function productTitle(id) {
  const p = state.products.get(id);
  return p ? p.title : `Product ${id}`;
}

// ---- rendering --------------------------------------------------------------------------------
function render() {
  renderLanes();
  renderTable();
}

function lanesFor(anchors) {
  const ends = [];
  return anchors.map((a) => {
    let lane = ends.findIndex((end) => end <= a.start_s);
    if (lane < 0) { lane = ends.length; ends.push(0); }
    ends[lane] = a.end_s;
    return lane;
  });
}

function renderLanes() {
  const lanes = lanesFor(state.anchors);
  const count = Math.max(1, ...lanes.map((l) => l + 1));
  lanesEl.style.height = `${count * 30}px`;
  lanesEl.replaceChildren(...state.anchors.map((a, i) => {
    const bar = h('div', {
      class: `anchor-bar${state.editing === a.id ? ' editing' : ''}`, tabindex: 0, role: 'button',
      'aria-label': `${productTitle(a.product_id)}, ${fmtTime(a.start_s)} to ${fmtTime(a.end_s)}`,
      dataset: { anchorId: a.id },
    }, h('span', { class: 'handle l', dataset: { edge: 'start' } }),
    h('span', { class: 'bar-label' }, a.label || productTitle(a.product_id)),
    h('span', { class: 'handle r', dataset: { edge: 'end' } }));
    bar.style.left = pct(a.start_s);
    bar.style.width = pct(a.end_s - a.start_s);
    bar.style.top = `${lanes[i] * 30 + 3}px`;
    bar.addEventListener('pointerdown', (e) => dragAnchor(e, a, bar));
    bar.addEventListener('keydown', (e) => keyAnchor(e, a));
    return bar;
  }));
}

function renderTable() {
  const tbody = document.querySelector('#anchors tbody');
  document.getElementById('anchors-empty').hidden = state.anchors.length > 0;
  tbody.replaceChildren(...state.anchors.map((a) => {
    const copy = h('button', { type: 'button', class: 'small secondary' }, 'Copy');
    copy.addEventListener('click', async () => {
      try { await navigator.clipboard.writeText(a.link); copy.textContent = 'Copied'; } catch { copy.textContent = 'Select it'; }
    });
    const edit = h('button', { type: 'button', class: 'small secondary', onclick: () => startEdit(a) }, 'Edit');
    const del = h('button', { type: 'button', class: 'small danger', onclick: () => archive(a) }, 'Delete');
    return h('tr', { dataset: { anchorId: a.id, code: a.code } },
      h('td', {}, h('strong', {}, productTitle(a.product_id)), a.label ? h('div', { class: 'muted small' }, a.label) : null),
      h('td', { class: 'range' }, `${fmtTime(a.start_s)} – ${fmtTime(a.end_s)}`),
      h('td', {}, h('a', { href: a.link, class: 'anchor-link', target: '_blank', rel: 'noopener' }, a.link), ' ', copy),
      h('td', {}, h('a', { href: `/v1/anchors/${a.code}/qr.png?scale=8`, target: '_blank', rel: 'noopener' },
        h('img', { class: 'qr', src: `/v1/anchors/${a.code}/qr.png?scale=3`, alt: `QR code for ${a.link}`, width: 72, height: 72 }))),
      h('td', { class: 'actions' }, edit, ' ', del));
  }));
}

function renderCuts() {
  document.getElementById('cuts').replaceChildren(...state.cuts.map((c) => {
    const tick = h('span', { class: 'cut', title: `Scene cut at ${fmtTime(c)}` });
    tick.style.left = pct(c);
    return tick;
  }));
  renderRuler();
}

/** Time labels far enough apart never to touch (about one per 64 px: fewer on a phone). */
function renderRuler() {
  const ruler = document.getElementById('ruler');
  const width = ruler.getBoundingClientRect().width || 640;
  const step = niceStep(state.duration / Math.max(1, Math.min(10, Math.floor(width / 64))));
  const marks = [];
  for (let t = 0; t <= state.duration + 1e-9; t += step) {
    const m = h('span', {}, fmtTime(t));
    m.style.left = pct(t);
    if (t > 0 && state.duration - t < step / 2) m.classList.add('end');  // inside the ruler, not past it
    marks.push(m);
  }
  ruler.replaceChildren(...marks);
}

function niceStep(raw) {
  for (const s of [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600]) if (s >= raw) return s;
  return 1200;
}

/** Frames at the middle of each scene, drawn from a second (hidden) video element. */
async function renderThumbs() {
  const bounds = [0, ...state.cuts.filter((c) => c > 0 && c < state.duration), state.duration];
  let segments = bounds.slice(1).map((end, i) => [bounds[i], end]);
  while (segments.length > MAX_THUMBS) {  // merge neighbours evenly until few enough
    segments = segments.reduce((acc, seg, i) => (i % 2 ? (acc[acc.length - 1][1] = seg[1], acc) : [...acc, [...seg]]), []);
  }
  const strip = document.getElementById('thumbs');
  const imgs = segments.map(([a, b]) => {
    const img = h('img', { alt: '', draggable: 'false' });
    const cell = h('span', { class: 'thumb' }, img);
    cell.style.left = pct(a);
    cell.style.width = pct(b - a);
    strip.append(cell);
    return [img, (a + b) / 2];
  });
  const grabber = document.createElement('video');
  grabber.muted = true;
  grabber.preload = 'auto';
  grabber.src = player.currentSrc || player.src;
  try {
    await new Promise((ok, fail) => { grabber.onloadeddata = ok; grabber.onerror = fail; });
  } catch { return; }
  const canvas = document.createElement('canvas');
  canvas.height = 72;
  canvas.width = Math.round(72 * (grabber.videoWidth / grabber.videoHeight || 16 / 9));
  const ctx = canvas.getContext('2d');
  for (const [img, t] of imgs) {
    await new Promise((ok) => { grabber.onseeked = ok; grabber.currentTime = Math.min(t, Math.max(0, state.duration - 0.05)); });
    ctx.drawImage(grabber, 0, 0, canvas.width, canvas.height);
    img.src = canvas.toDataURL('image/jpeg', 0.7);
  }
  grabber.removeAttribute('src');
  grabber.load();
  timeline.dataset.thumbs = 'ready';
}

// ---- selecting a range on the timeline --------------------------------------------------------
timeline.addEventListener('pointerdown', (e) => {
  if (e.button !== 0 || e.target.closest('.anchor-bar') || !state.duration) return;
  e.preventDefault();
  const t0 = snapTime(timeAt(e.clientX));
  let t1 = t0;
  timeline.setPointerCapture(e.pointerId);
  const draw = () => {
    const [a, b] = t0 <= t1 ? [t0, t1] : [t1, t0];
    selectionEl.hidden = false;
    selectionEl.style.left = pct(a);
    selectionEl.style.width = pct(b - a);
    return [a, b];
  };
  draw();
  const move = (ev) => { t1 = snapTime(timeAt(ev.clientX)); draw(); };
  const up = () => {
    timeline.removeEventListener('pointermove', move);
    timeline.removeEventListener('pointerup', up);
    const [a, b] = draw();
    if (b - a < 0.05) { selectionEl.hidden = true; player.currentTime = a; return; }
    if (state.editing === null) resetForm(false);
    form.start_s.value = a;
    form.end_s.value = b;
    player.currentTime = a;
    document.getElementById('product-search').focus();
  };
  timeline.addEventListener('pointermove', move);
  timeline.addEventListener('pointerup', up);
});

// ---- moving and resizing anchors --------------------------------------------------------------
function dragAnchor(e, anchor, bar) {
  if (e.button !== 0) return;
  e.preventDefault();
  e.stopPropagation();
  const edge = e.target.dataset.edge || null;
  const x0 = e.clientX;
  const { start_s: s0, end_s: e0 } = anchor;
  let range = [s0, e0];
  let moved = false;
  bar.setPointerCapture(e.pointerId);
  const move = (ev) => {
    const dt = ((ev.clientX - x0) / timeline.getBoundingClientRect().width) * state.duration;
    if (Math.abs(ev.clientX - x0) > 3) moved = true;
    if (!moved) return;
    if (edge === 'start') range = [Math.min(snapTime(Math.max(0, s0 + dt)), e0 - 0.05), e0];
    else if (edge === 'end') range = [s0, Math.max(snapTime(Math.min(state.duration, e0 + dt)), s0 + 0.05)];
    else {
      const len = e0 - s0;
      let s = Math.min(Math.max(0, s0 + dt), state.duration - len);
      const snapped = snapTime(s);
      s = snapped !== Math.round(s * 100) / 100 ? snapped : snapTime(s + len) - len;
      s = Math.min(Math.max(0, s), state.duration - len);
      range = [Math.round(s * 100) / 100, Math.round((s + len) * 100) / 100];
    }
    bar.style.left = pct(range[0]);
    bar.style.width = pct(range[1] - range[0]);
  };
  const up = async () => {
    bar.removeEventListener('pointermove', move);
    bar.removeEventListener('pointerup', up);
    if (!moved) { startEdit(anchor); return; }
    await patchRange(anchor, range[0], range[1]);
  };
  bar.addEventListener('pointermove', move);
  bar.addEventListener('pointerup', up);
}

async function patchRange(anchor, start, end) {
  timelineError.textContent = '';
  try {
    await api('PATCH', `/api/v1/videos/${VIDEO_ID}/anchors/${anchor.id}`, { start_s: start, end_s: end });
  } catch (err) {
    timelineError.textContent = err.message;
  }
  await loadAnchors();
  document.querySelector(`.anchor-bar[data-anchor-id="${anchor.id}"]`)?.focus();
}

async function keyAnchor(e, anchor) {
  const step = e.altKey ? 1 : 0.1;
  if (e.key === 'ArrowLeft' || e.key === 'ArrowRight') {
    e.preventDefault();
    const d = e.key === 'ArrowLeft' ? -step : step;
    const len = anchor.end_s - anchor.start_s;
    if (e.shiftKey) await patchRange(anchor, anchor.start_s, Math.max(anchor.start_s + 0.05, Math.min(state.duration, anchor.end_s + d)));
    else {
      const s = Math.min(Math.max(0, anchor.start_s + d), state.duration - len);
      await patchRange(anchor, Math.round(s * 100) / 100, Math.round((s + len) * 100) / 100);
    }
  } else if (e.key === 'Enter' || e.key === ' ') {
    e.preventDefault();
    startEdit(anchor);
  } else if (e.key === 'Delete' || e.key === 'Backspace') {
    e.preventDefault();
    await archive(anchor);
  }
}

async function archive(anchor) {
  if (!window.confirm(`Delete the anchor for ${productTitle(anchor.product_id)}? Its link stops showing in the player.`)) return;
  try {
    await api('DELETE', `/api/v1/videos/${VIDEO_ID}/anchors/${anchor.id}`);
    if (state.editing === anchor.id) resetForm();
  } catch (err) {
    timelineError.textContent = err.message;
  }
  await loadAnchors();
}

// ---- the anchor form --------------------------------------------------------------------------
// ---- the card preview: the widget's own card (window.shoplink from /v1/player.js) on the player --
let previewer = null;
function renderPreview() {
  if (!previewer && window.shoplink && window.shoplink.preview) previewer = window.shoplink.preview(player);
  if (!previewer) return;
  const p = state.product ? { ...(state.products.get(state.product.id) || {}), ...state.product } : null;
  previewer.preview(p ? {
    title: form.label.value.trim() || p.title,
    price: p.price != null ? `${p.currency || ''} ${p.price}`.trim() : '',
    image: p.image_url || null,
    position: state.position,
  } : null);
}
form.label.addEventListener('input', renderPreview);

function chooseProduct(p) {
  state.product = p;
  if (p) state.products.set(p.id, { ...(state.products.get(p.id) || {}), ...p });
  document.getElementById('product-chosen').textContent = p ? `${p.title}${p.plan ? ` · plan “${p.plan}”` : ''}` : 'No product chosen';
  document.getElementById('product-chosen').classList.toggle('muted', !p);
  for (const li of results.children) li.setAttribute('aria-selected', String(p && Number(li.dataset.productId) === p.id));
  renderPreview();
}

function setPosition(pos) {
  state.position = pos;
  document.getElementById('position-text').textContent = pos
    ? `Card position: ${Math.round(pos.x * 100)}%, ${Math.round(pos.y * 100)}%` : 'Card position: default';
  renderPreview();
}

function resetForm(clearRange = true) {
  state.editing = null;
  form.reset();
  document.getElementById('snap').checked = true;
  if (!clearRange) { /* keep the fields the caller is about to fill */ }
  chooseProduct(null);
  setPosition(null);
  for (const el of form.querySelectorAll('[data-error-for]')) el.textContent = '';
  formError.textContent = '';
  document.getElementById('form-heading').textContent = 'Add a product';
  document.getElementById('anchor-submit').textContent = 'Add anchor';
  document.getElementById('anchor-cancel').hidden = true;
  selectionEl.hidden = true;
  renderLanes();
}

function startEdit(a) {
  resetForm();
  state.editing = a.id;
  form.start_s.value = a.start_s;
  form.end_s.value = a.end_s;
  form.label.value = a.label || '';
  setPosition(a.position);
  chooseProduct({ id: a.product_id, title: productTitle(a.product_id) });
  document.getElementById('form-heading').textContent = `Edit anchor ${a.code}`;
  document.getElementById('anchor-submit').textContent = 'Save';
  document.getElementById('anchor-cancel').hidden = false;
  player.currentTime = a.start_s;
  renderLanes();
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const body = {
    start_s: form.start_s.value === '' ? null : Number(form.start_s.value),
    end_s: form.end_s.value === '' ? null : Number(form.end_s.value),
    label: form.label.value.trim() || null,
    position: state.position,
  };
  const local = [];
  if (body.start_s === null) local.push({ field: 'start_s', message: 'choose a start (drag on the timeline)' });
  if (body.end_s === null) local.push({ field: 'end_s', message: 'choose an end (drag on the timeline)' });
  if (!state.product) local.push({ field: 'product_id', message: 'choose a product' });
  if (local.length) {
    for (const el of form.querySelectorAll('[data-error-for]')) el.textContent = '';
    for (const l of local) form.querySelector(`[data-error-for="${l.field}"]`).textContent = l.message;
    return;
  }
  body.product_id = state.product.id;
  const submit = document.getElementById('anchor-submit');
  submit.disabled = true;
  try {
    if (state.editing !== null) {
      await api('PATCH', `/api/v1/videos/${VIDEO_ID}/anchors/${state.editing}`, body);
    } else {
      if (body.position === null) delete body.position;
      await api('POST', `/api/v1/videos/${VIDEO_ID}/anchors`, body);
    }
    resetForm();
    await loadAnchors();
  } catch (err) {
    if (err instanceof ApiError && Array.isArray(err.details)) {
      for (const el of form.querySelectorAll('[data-error-for]')) el.textContent = '';
      let placed = false;
      for (const d of err.details) {
        const key = String(d.field || '').split('.')[0];
        const slot = form.querySelector(`[data-error-for="${CSS.escape(key)}"]`);
        if (slot) { slot.textContent = d.message || err.message; placed = true; }
      }
      formError.textContent = placed ? '' : err.message;
    } else {
      showError(err, form, formError);
    }
  } finally {
    submit.disabled = false;
  }
});

document.getElementById('anchor-cancel').addEventListener('click', () => resetForm());
document.getElementById('start-now').addEventListener('click', () => { form.start_s.value = snapTime(player.currentTime); });
document.getElementById('end-now').addEventListener('click', () => { form.end_s.value = snapTime(player.currentTime); });

// ---- product picker ---------------------------------------------------------------------------
let searchSeq = 0;
async function showResults() {
  const seq = ++searchSeq;
  const query = document.getElementById('product-search').value.trim();
  const items = await searchProducts(query);
  if (seq !== searchSeq) return;
  results.replaceChildren(...items.slice(0, 30).map((p) => {
    const li = h('li', { role: 'option', tabindex: 0, 'aria-selected': String(state.product?.id === p.id), dataset: { productId: p.id } },
      h('span', { class: 'title' }, p.title), ' ', h('span', { class: 'muted small' }, p.plan ? `plan “${p.plan}”` : fmtPrice(p)));
    const pick = () => { chooseProduct(p); form.querySelector('[data-error-for="product_id"]').textContent = ''; };
    li.addEventListener('click', pick);
    li.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); pick(); } });
    return li;
  }));
  productHint(items.length ? null : query);
}

/** Nothing to pick: say where products come from (a new creator has none until joining a plan). */
function productHint(query) {
  const hint = document.getElementById('product-hint');
  hint.hidden = query === null;
  if (query === null) return;
  hint.replaceChildren(query ? `No products match “${query}”. ` : 'No products to anchor yet. ',
    'Sellers add their own on ', h('a', { href: '/shops' }, 'Shops'), '; creators join a promotion plan in the ',
    h('a', { href: '/marketplace' }, 'Marketplace'), ' to promote its products.');
}
let debounce = 0;
document.getElementById('product-search').addEventListener('input', () => {
  clearTimeout(debounce);
  debounce = setTimeout(showResults, 150);
});
document.getElementById('product-search').addEventListener('focus', showResults, { once: true });

// ---- placing the card on the frame ------------------------------------------------------------
const placeLayer = document.getElementById('place-layer');
document.getElementById('place').addEventListener('click', () => {
  if (state.position) { setPosition(null); document.getElementById('place').textContent = 'Place on video'; return; }
  const r = player.getBoundingClientRect();
  Object.assign(placeLayer.style, { left: `${player.offsetLeft}px`, top: `${player.offsetTop}px`, width: `${r.width}px`, height: `${r.height}px` });
  placeLayer.hidden = false;
});
placeLayer.addEventListener('click', (e) => {
  const r = player.getBoundingClientRect();
  const vw = player.videoWidth || r.width;
  const vh = player.videoHeight || r.height;
  const scale = Math.min(r.width / vw, r.height / vh);
  const fx = (r.width - vw * scale) / 2;
  const fy = (r.height - vh * scale) / 2;
  const clamp = (v) => Math.round(Math.min(0.95, Math.max(0, v)) * 1000) / 1000;
  setPosition({ x: clamp((e.clientX - r.left - fx) / (vw * scale)), y: clamp((e.clientY - r.top - fy) / (vh * scale)) });
  placeLayer.hidden = true;
  document.getElementById('place').textContent = 'Default position';
});

// ---- playhead ---------------------------------------------------------------------------------
player.addEventListener('timeupdate', () => {
  if (state.duration) document.getElementById('playhead').style.left = pct(player.currentTime);
});

async function main() {
  await mountNav();
  const [video, scenes] = await Promise.all([
    api('GET', `/api/v1/videos/${VIDEO_ID}`),
    api('GET', `/api/v1/videos/${VIDEO_ID}/scenes`).catch(() => ({ cuts: [] })),
  ]);
  state.video = video;
  state.duration = video.duration_s;
  state.cuts = (scenes.cuts || []).filter((c) => c > 0 && c < video.duration_s);
  document.getElementById('video-title').textContent = video.title || `Video ${VIDEO_ID}`;
  const warning = document.getElementById('playback-warning');
  warning.hidden = video.playable !== false;
  warning.textContent = video.playback_warning || '';
  document.title = `${video.title || 'Video'} · shoplink`;
  renderCuts();
  new ResizeObserver(() => renderRuler()).observe(document.getElementById('ruler'));
  await loadAnchors();
  timeline.dataset.ready = 'true';
  renderThumbs();
}

main().catch((err) => { timelineError.textContent = err.message; });
