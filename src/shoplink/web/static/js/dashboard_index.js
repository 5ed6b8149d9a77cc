// /dashboard: an overview of the signed-in account: its videos, lives, products and links ranked
// by clicks in the chosen period, each by name and linked to its own dashboard. The columns come
// from the stats API's `totals` (every number it carries, so new measures such as impressions,
// orders or GMV appear without a change here); refresh without reloading.
import { api, h } from './api.js';
import { mountNav } from './nav.js';
import { emptyState, scrollBox } from './ui.js';

const PERIODS = { '24h': [86400, 'hour'], '7d': [7 * 86400, 'hour'], '30d': [30 * 86400, 'day'], '90d': [90 * 86400, 'day'] };
const MAX_ROWS = 15;  // entities asked about per section (one stats request each)
const FIRST = ['impressions', 'clicks', 'ctr', 'human', 'unique_viewers', 'orders', 'gmv', 'commission'];
// Funnel fields left out of the overview (the entity's own dashboard shows them).
const FUNNEL_SKIP = new Set(['clicks', 'views', 'view_through', 'unique_impressions', 'unique_clickers']);
const HIDDEN = new Set(['by_class', 'by_outcome', 'by_class_outcome', 'bot', 'link_preview']);
const form = document.getElementById('overview-controls');
const errorBox = document.getElementById('overview-error');
let who = null;

function range() {
  const [seconds, granularity] = PERIODS[form.period.value];
  const to = Math.ceil(Date.now() / 1000);
  return new URLSearchParams({ granularity, from: String(to - seconds), to: String(to) }).toString();
}

/** The measures of a stats document, flattened: top-level scalars of `totals`, humans, unique viewers. */
function measures(doc) {
  const out = {};
  for (const [k, v] of Object.entries(doc.totals || {})) {
    if (!HIDDEN.has(k) && (typeof v === 'number' || typeof v === 'string')) out[k] = v;
  }
  if (doc.totals && doc.totals.by_class) out.human = doc.totals.by_class.human;
  if (doc.unique_viewers != null) out.unique_viewers = doc.unique_viewers;
  // The funnel (impressions -> clicks -> orders -> GMV, commission): numbers, rates as percent,
  // per-class counts by their human part, amounts per currency.
  for (const [k, v] of Object.entries(doc.funnel || {})) {
    if (k in out || FUNNEL_SKIP.has(k)) continue;
    if (typeof v === 'number') out[k] = /ctr$|_rate$/.test(k) ? `${(v * 100).toFixed(1)} %` : v;
    else if (v === null) out[k] = '—';
    else if (Array.isArray(v)) out[k] = v.length ? v.map((x) => `${x.currency} ${x.amount}`).join(', ') : '0';
    else if (typeof v === 'object' && typeof v.human === 'number') out[k] = v.human;
  }
  return out;
}

function columnsOf(rows) {
  const keys = new Set(rows.flatMap((r) => Object.keys(r.m)));
  return [...FIRST.filter((k) => keys.has(k)), ...[...keys].filter((k) => !FIRST.includes(k)).sort()];
}

function label(key) {
  return { human: 'clicks by people', unique_viewers: 'unique viewers', ctr: 'CTR', unique_ctr: 'unique CTR', gmv: 'GMV',
    impressions: 'impressions (people)' }[key] || key.replace(/_/g, ' ');
}

function table(section, rows) {
  const cols = columnsOf(rows);
  return scrollBox(h('table', { class: 'list stack', id: `${section}-table`, 'aria-label': section },
    h('thead', {}, h('tr', {}, h('th', {}, 'Name'), cols.map((c) => h('th', { dataset: { col: c } }, label(c))))),
    h('tbody', {}, rows.map((r) => h('tr', { dataset: { id: r.id } },
      h('td', { 'data-label': 'Name' }, h('a', { href: r.href }, r.name), r.note ? h('div', { class: 'muted small' }, r.note) : null),
      cols.map((c) => h('td', { class: 'num', 'data-label': label(c), dataset: { col: c } }, String(r.m[c] ?? 0))))))));
}

async function ranked(kind, entities, name, note) {
  const q = range();
  const rows = await Promise.all(entities.slice(0, MAX_ROWS).map(async (e) => {
    const doc = await api('GET', `/api/v1/stats/${kind}/${e.id}?${q}`).catch(() => null);
    return { id: e.id, name: name(e), note: note ? note(e) : '', href: `/dashboard/${kind}/${e.id}`, m: doc ? measures(doc) : {} };
  }));
  return rows.sort((a, b) => (Number(b.m.clicks) || 0) - (Number(a.m.clicks) || 0));
}

function fill(id, content) {
  document.querySelector(`#${id} .overview-body`).replaceChildren(content);
}

async function videos() {
  const page = await api('GET', '/api/v1/videos?limit=50');
  if (!page.items.length) {
    fill('sec-videos', emptyState('No videos yet. Upload one in the studio and place products on its timeline.', h('a', { href: '/studio' }, 'Go to the studio')));
    return page.items;
  }
  fill('sec-videos', table('videos', await ranked('videos', page.items, (v) => v.title || 'Untitled video')));
  return page.items;
}

async function lives() {
  const page = await api('GET', '/api/v1/live?limit=50');
  if (!page.items.length) {
    fill('sec-live', emptyState('No live sessions yet. Prepare one, then pin products while you are live.', h('a', { href: '/studio/live' }, 'Live console')));
    return;
  }
  fill('sec-live', table('live', await ranked('live', page.items, (s) => s.title || 'Untitled live', (s) => s.status)));
}

async function products() {
  const seller = who.roles.some((r) => r === 'seller' || r === 'admin');
  if (seller) {
    const page = await api('GET', '/api/v1/products?status=active&limit=50');
    if (!page.items.length) {
      fill('sec-products', emptyState('No products yet. Create a shop and add products, one by one or from a CSV file.', h('a', { href: '/shops' }, 'Your shops')));
      return;
    }
    fill('sec-products', table('products', await ranked('products', page.items, (p) => p.title, (p) => p.sku || '')));
    return;
  }
  const [top, mine] = await Promise.all([api('GET', `/api/v1/stats/creators/${who.account_id}/top-products?limit=${MAX_ROWS}`),
    api('GET', '/api/v1/me/plans').catch(() => ({ items: [] }))]);
  const titles = new Map(mine.items.flatMap((e) => e.plan.products.map((p) => [p.product_id, p.title])));
  if (!top.items.length) {
    fill('sec-products', emptyState('No clicks on products yet. Join a plan in the marketplace, place its products on a video and share it.', h('a', { href: '/marketplace' }, 'Marketplace')));
    return;
  }
  const rows = top.items.map((i) => ({ id: i.product_id, name: titles.get(i.product_id) || `Product ${i.product_id}`, href: `/dashboard/products/${i.product_id}`,
    note: 'all time', m: { clicks: i.clicks } }));
  fill('sec-products', table('products', rows));
}

async function sellerSections() {
  if (!who.roles.some((r) => r === 'seller' || r === 'admin')) return;
  const [shops, plans] = await Promise.all([api('GET', '/api/v1/shops?limit=50'), api('GET', '/api/v1/plans?limit=50')]);
  document.getElementById('sec-shops').hidden = false;
  document.getElementById('sec-plans').hidden = false;
  fill('sec-shops', shops.items.length ? table('shops', await ranked('shops', shops.items, (s) => s.name))
    : emptyState('No shop yet. Create one and prove its domain to start.', h('a', { href: '/shops' }, 'Your shops')));
  fill('sec-plans', plans.items.length ? table('plans', await ranked('plans', plans.items, (x) => x.name, (x) => `${x.kind}, ${x.status}`))
    : emptyState('No promotion plan yet. Open one so creators promote your products.', h('a', { href: '/plans' }, 'Promotion plans')));
}

async function anchors(videoList) {
  if (!videoList.length) {
    fill('sec-anchors', emptyState('Links appear here once you place products on your videos.', h('a', { href: '/studio' }, 'Your videos')));
    return;
  }
  const titles = new Map();
  const lists = await Promise.all(videoList.slice(0, MAX_ROWS).map(async (v) => {
    const [top, timeline] = await Promise.all([api('GET', `/api/v1/stats/videos/${v.id}/top-anchors?limit=10`).catch(() => ({ items: [] })),
      fetch(`/v1/videos/${v.id}/anchors`, { cache: 'no-store' }).then((r) => (r.ok ? r.json() : { anchors: [] }))]);
    for (const a of timeline.anchors) titles.set(a.id, a.product ? a.product.title : a.code);
    return top.items.map((i) => ({ id: i.anchor_id, name: titles.get(i.anchor_id) || 'Link', note: v.title, href: `/dashboard/anchors/${i.anchor_id}`, m: { clicks: i.clicks } }));
  }));
  const rows = lists.flat().sort((a, b) => b.m.clicks - a.m.clicks).slice(0, MAX_ROWS);
  fill('sec-anchors', rows.length ? table('anchors', rows)
    : emptyState('No clicks on your links yet. Share a video page or a link from My links.', h('a', { href: '/links' }, 'My links')));
}

async function load() {
  errorBox.textContent = '';
  const status = document.getElementById('overview-status');
  status.textContent = 'Loading…';
  const vids = await videos();
  await Promise.all([sellerSections(), lives(), products(), anchors(vids)]);
  status.textContent = `Updated ${new Date().toLocaleTimeString()}`;
  document.getElementById('overview').dataset.loaded = String(Number(document.getElementById('overview').dataset.loaded || 0) + 1);
}

function refresh() { load().catch((err) => { errorBox.textContent = err.message; }); }
form.addEventListener('submit', (e) => { e.preventDefault(); refresh(); });
form.period.addEventListener('change', refresh);

mountNav().then((session) => { who = session; refresh(); }).catch((err) => { errorBox.textContent = err.message; });
