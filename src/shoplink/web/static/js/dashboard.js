// /dashboard/{kind}/{id}: totals by class, unique viewers, a time series, the video's click
// heatmap, top anchors/products, period selection and CSV downloads (Chart.js from /vendor/).
import { api, fmtTime, h, session } from './api.js';
import { mountNav } from './nav.js';

const root = document.getElementById('dashboard');
const KIND = root.dataset.kind;
const ID = Number(root.dataset.entityId);
const errorBox = document.getElementById('dash-error');
const PERIODS = {
  '1h': { seconds: 3600, granularity: 'minute' },
  '24h': { seconds: 86400, granularity: 'hour' },
  '7d': { seconds: 7 * 86400, granularity: 'hour' },
  '30d': { seconds: 30 * 86400, granularity: 'day' },
  '90d': { seconds: 90 * 86400, granularity: 'day' },
};
const TOP = { videos: 'top-anchors', live: 'top-anchors', shops: 'top-products', creators: 'top-products' };
const COLORS = { human: '#e0245e', bot: '#8a93a6', link_preview: '#f0b429' };
const charts = {};
const names = new Map();  // "anchor:12" / "product:3" -> a readable name

function query() {
  const p = PERIODS[document.getElementById('period').value];
  const to = Math.ceil(Date.now() / 1000);
  return new URLSearchParams({ granularity: p.granularity, from: String(to - p.seconds), to: String(to) }).toString();
}

function chartLib() {
  return new Promise((resolve) => {
    if (window.Chart) resolve(window.Chart);
    else window.addEventListener('load', () => resolve(window.Chart || null), { once: true });
  });
}

function label(iso, granularity) {
  const d = new Date(iso);
  if (granularity === 'day') return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
  if (granularity === 'hour') return d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit' });
  return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

function draw(id, config) {
  const Chart = window.Chart;
  if (!Chart) return;
  if (charts[id]) {
    charts[id].data = config.data;
    charts[id].update('none');
  } else {
    charts[id] = new Chart(document.getElementById(id), config);
  }
}

async function loadNames() {
  try {
    if (KIND === 'videos') {
      const body = await fetch(`/v1/videos/${ID}/anchors`, { cache: 'no-store' }).then((r) => (r.ok ? r.json() : { anchors: [] }));
      for (const a of body.anchors) names.set(`anchor:${a.id}`, `${a.product ? a.product.title : a.code} (${fmtTime(a.start_s)}–${fmtTime(a.end_s)})`);
      const video = await api('GET', `/api/v1/videos/${ID}`);
      document.getElementById('dash-title').textContent = `Video: ${video.title}`;
      root.dataset.duration = video.duration_s;
    } else if (KIND === 'live') {
      const live = await api('GET', `/api/v1/live/${ID}`);
      for (const p of live.products) names.set(`anchor:${p.anchor_id}`, p.title);
      document.getElementById('dash-title').textContent = `Live: ${live.title}`;
    } else if (KIND === 'products') {
      const product = await api('GET', `/api/v1/products/${ID}`);
      document.getElementById('dash-title').textContent = `Product: ${product.title}`;
    } else if (KIND === 'shops') {
      const shop = await api('GET', `/api/v1/shops/${ID}`);
      document.getElementById('dash-title').textContent = `Shop: ${shop.name}`;
      const products = await api('GET', `/api/v1/shops/${ID}/products?limit=200`);
      for (const p of products.items) names.set(`product:${p.id}`, p.title);
    } else if (KIND === 'plans') {
      const plan = await api('GET', `/api/v1/plans/${ID}`);
      document.getElementById('dash-title').textContent = `Plan: ${plan.name}`;
    } else if (KIND === 'creators') {
      const who = await session();
      if (who.account_id === ID) document.getElementById('dash-title').textContent = `Creator: ${who.name}`;
      const mine = await api('GET', '/api/v1/me/plans');
      for (const e of mine.items) for (const p of e.plan.products) names.set(`product:${p.product_id}`, p.title);
    }
  } catch { /* names are a nicety; ids are shown instead */ }
  document.title = `${document.getElementById('dash-title').textContent} · shoplink`;
}

async function load() {
  errorBox.textContent = '';
  const stats = await api('GET', `/api/v1/stats/${KIND}/${ID}?${query()}`);
  document.getElementById('csv').href = `/api/v1/stats/${KIND}/${ID}.csv?${query()}`;
  const t = stats.totals;
  const values = { clicks: t.clicks, ...t.by_class, ...t.by_outcome, unique_viewers: stats.unique_viewers };
  for (const el of document.querySelectorAll('#kpis [data-kpi]')) el.textContent = values[el.dataset.kpi] ?? 0;
  showFunnel(stats.funnel);
  draw('series-chart', {
    type: 'bar',
    data: {
      labels: stats.series.map((s) => label(s.t, stats.granularity)),
      datasets: ['human', 'bot', 'link_preview'].map((c) => ({
        label: c.replace('_', ' '), data: stats.series.map((s) => s[c]), backgroundColor: COLORS[c], stack: 'clicks' })),
    },
    options: { maintainAspectRatio: false, animation: false, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
  });
  if (KIND === 'videos') await loadHeatmap();
  if (TOP[KIND]) await loadTop();
  root.dataset.loaded = String(Number(root.dataset.loaded || 0) + 1);
}

function pct(v) { return v == null ? '—' : `${(v * 100).toFixed(1)} %`; }
function money(list) { return list && list.length ? list.map((x) => `${x.currency} ${x.amount}`).join(', ') : '0'; }

/** impressions -> clicks -> orders -> GMV and commission (people only), when the API sends it. */
function showFunnel(f) {
  const section = document.getElementById('funnel-section');
  section.hidden = !f;
  if (!f) return;
  const steps = [
    ['impressions', f.impressions && f.impressions.human, 'cards seen by people'],
    ['ctr', pct(f.ctr), 'CTR (clicks / impressions)'],
    ['funnel-clicks', f.clicks, 'clicks by people'],
    ['orders', f.orders, 'orders'],
    ['conversion_rate', pct(f.conversion_rate), 'orders / clicks'],
    ['gmv', money(f.gmv), 'GMV'],
    ['commission', money(f.commission), 'commission'],
  ];
  document.getElementById('funnel-kpis').replaceChildren(...steps.map(([key, value, text]) => h('div', { class: 'kpi' },
    h('span', { class: 'kpi-value', dataset: { kpi: key } }, String(value ?? 0)), h('span', { class: 'kpi-label' }, text))));
}

async function loadHeatmap() {
  const heat = await api('GET', `/api/v1/stats/videos/${ID}/heatmap`);
  document.getElementById('heatmap-section').hidden = false;
  document.getElementById('heatmap-csv').href = `/api/v1/stats/videos/${ID}/heatmap.csv`;
  const bucket = heat.bucket_s || 1;
  const duration = Number(root.dataset.duration) || Math.max(bucket, ...heat.cells.map((c) => c.second + bucket));
  const n = Math.max(1, Math.ceil(duration / bucket));
  const counts = new Array(n).fill(0);
  for (const c of heat.cells) counts[Math.min(n - 1, Math.floor(c.second / bucket))] += c.clicks;
  draw('heatmap-chart', {
    type: 'bar',
    data: { labels: counts.map((_, i) => fmtTime(i * bucket)), datasets: [{ label: 'clicks at this second', data: counts, backgroundColor: '#e0245e' }] },
    options: { maintainAspectRatio: false, animation: false, plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
}

async function loadTop() {
  const path = `/api/v1/stats/${KIND}/${ID}/${TOP[KIND]}`;
  const top = await api('GET', `${path}?limit=10`);
  const child = top.child_kind;
  document.getElementById('top-section').hidden = false;
  document.getElementById('top-heading').textContent = `Top ${child}s`;
  document.getElementById('top-col').textContent = child;
  document.getElementById('top-csv').href = `${path}.csv?limit=100`;
  document.querySelector('#top tbody').replaceChildren(...top.items.map((i) => {
    const id = i[`${child}_id`];
    const name = names.get(`${child}:${id}`) || `${child} ${id}`;
    const target = child === 'anchor' ? `/dashboard/anchors/${id}` : `/dashboard/products/${id}`;
    return h('tr', { dataset: { id } }, h('td', {}, i.rank), h('td', {}, h('a', { href: target }, name)), h('td', { class: 'num' }, i.clicks));
  }));
}

async function refresh() {
  try { await load(); } catch (err) { errorBox.textContent = err.message; }
}

document.getElementById('period').addEventListener('change', refresh);
document.getElementById('refresh').addEventListener('click', refresh);

mountNav().then(async () => {
  await Promise.all([chartLib(), loadNames()]);
  await refresh();
  setInterval(() => { if (!document.hidden) refresh(); }, 10000);
}).catch((err) => { errorBox.textContent = err.message; });
