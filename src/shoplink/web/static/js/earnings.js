// /earnings: the affiliate report (GET /api/v1/reports/affiliates) for a period, by plan or
// creator: clicks, sales and commission per currency. Columns come from COLUMNS plus any other
// scalar field the API's sale lines carry (settlement states and payouts can appear without a
// change here); totals per currency on top.
import { api, h } from './api.js';
import { mountNav } from './nav.js';
import { emptyState, fmtMoney, scrollBox } from './ui.js';

const form = document.getElementById('earnings-form');
const box = document.getElementById('earnings');
const errorBox = document.getElementById('earnings-error');
const names = { plan: new Map(), creator: new Map() };
let who = null;

// [key, label, value(line)]; a line is {item, sale} (sale null when nothing sold)
const COLUMNS = [
  ['name', null, (l, g) => nameOf(g, l.item[`${g}_id`])],
  ['clicks', 'Clicks (people)', (l) => l.item.clicks.human],
  ['clicks_total', 'All clicks', (l) => l.item.clicks.total],
  ['conversions', 'Sales', (l) => (l.sale ? l.sale.conversions : 0)],
  ['refunded', 'Refunded', (l) => (l.sale ? l.sale.refunded : 0)],
  ['amount', 'Sales amount', (l) => (l.sale ? fmtMoney(l.sale.amount, l.sale.currency) : '—')],
  ['commission_owed', 'Commission', (l) => (l.sale ? fmtMoney(l.sale.commission_owed, l.sale.currency) : '—')],
];
const KNOWN_SALE_KEYS = new Set(['currency', 'conversions', 'refunded', 'amount', 'amount_minor', 'commission_owed', 'commission_owed_minor']);

function nameOf(group, id) {
  if (id == null) return 'Not attributed';
  return names[group].get(id) || (group === 'plan' ? `Plan ${id}` : `Creator ${id}`);
}

function label(key) { return key.replace(/_minor$/, '').replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase()); }

function query() {
  const to = new Date();
  const from = new Date(to.getTime() - Number(form.period.value) * 86400 * 1000);
  return new URLSearchParams({ group_by: form.group_by.value, from: from.toISOString(), to: to.toISOString() });
}

async function loadNames() {
  const [mine, own] = await Promise.all([
    who.roles.includes('creator') ? api('GET', '/api/v1/me/plans').catch(() => ({ items: [] })) : { items: [] },
    who.roles.some((r) => r === 'seller' || r === 'admin') ? api('GET', '/api/v1/plans?limit=200').catch(() => ({ items: [] })) : { items: [] }]);
  for (const e of mine.items) names.plan.set(e.plan.id, e.plan.name);
  for (const p of own.items) names.plan.set(p.id, p.name);
  // A seller's creators by name: from the enrolments of its plans (the first 20 plans).
  const lists = await Promise.all(own.items.slice(0, 20).map((p) => api('GET', `/api/v1/plans/${p.id}/enrolments`).catch(() => ({ items: [] }))));
  for (const e of lists.flatMap((l) => l.items)) if (e.creator_name) names.creator.set(e.creator_id, e.creator_name);
  names.creator.set(who.account_id, `${who.name} (you)`);
}

function kpis(lines) {
  const totals = new Map();
  for (const l of lines) {
    if (!l.sale) continue;
    const t = totals.get(l.sale.currency) || { sales: 0, amount: 0, commission: 0 };
    t.sales += l.sale.conversions;
    t.amount += l.sale.amount_minor;
    t.commission += l.sale.commission_owed_minor;
    totals.set(l.sale.currency, t);
  }
  const clicks = lines.reduce((n, l) => n + (l.first ? l.item.clicks.human : 0), 0);
  const out = [h('div', { class: 'kpi' }, h('span', { class: 'kpi-value', dataset: { kpi: 'clicks' } }, String(clicks)), h('span', { class: 'kpi-label' }, 'clicks by people'))];
  for (const [cur, t] of totals) {
    const minorDigits = (lines.find((l) => l.sale && l.sale.currency === cur).sale.amount.split('.')[1] || '').length;
    const fmt = (m) => (m / 10 ** minorDigits).toFixed(minorDigits);
    out.push(h('div', { class: 'kpi' }, h('span', { class: 'kpi-value', dataset: { kpi: `commission-${cur}` } }, `${cur} ${fmt(t.commission)}`), h('span', { class: 'kpi-label' }, `commission on ${t.sales} sale(s)`)));
  }
  return out;
}

async function load() {
  const q = query();
  document.getElementById('earnings-csv').href = `/api/v1/reports/affiliates.csv?${q}`;
  const report = await api('GET', `/api/v1/reports/affiliates?${q}`);
  const group = report.group_by;
  const lines = report.items.flatMap((item) => (item.sales.length
    ? item.sales.map((sale, i) => ({ item, sale, first: i === 0 })) : [{ item, sale: null, first: true }]));
  const extra = [...new Set(lines.flatMap((l) => (l.sale ? Object.keys(l.sale) : [])))]
    .filter((k) => !KNOWN_SALE_KEYS.has(k) && lines.some((l) => l.sale && ['string', 'number'].includes(typeof l.sale[k])));
  const columns = [...COLUMNS, ...extra.map((k) => [k, label(k), (l) => (l.sale && l.sale[k] != null ? String(l.sale[k]) : '—')])];
  document.getElementById('earnings-kpis').replaceChildren(...kpis(lines));
  if (!lines.length) {
    box.replaceChildren(emptyState(who.roles.includes('creator')
      ? 'Nothing in this period yet. Join a plan, place its products on your videos and share the links: clicks and sales show up here.'
      : 'No clicks or sales through creators\u2019 links in this period. Open a promotion plan so creators can promote your products.',
    h('a', { href: who.roles.includes('creator') ? '/marketplace' : '/plans' }, who.roles.includes('creator') ? 'Marketplace' : 'Promotion plans')));
    return;
  }
  box.replaceChildren(scrollBox(h('table', { class: 'list stack', id: 'earnings-table', 'aria-label': 'Earnings' },
    h('thead', {}, h('tr', {}, columns.map(([key, text]) => h('th', { dataset: { col: key } }, text || (group === 'plan' ? 'Plan' : 'Creator'))))),
    h('tbody', {}, lines.map((l) => h('tr', { dataset: { id: l.item[`${group}_id`] ?? '' } },
      columns.map(([key, text, value]) => h('td', { 'data-label': text || label(group), class: key === 'name' ? '' : 'num', dataset: { col: key } }, String(value(l, group))))))))));
}

// Settlement states and payouts have their own pages (/statement for creators, /payouts for sellers).
function settlementLink() {
  const creator = who.roles.includes('creator');
  document.getElementById('settlement-link').replaceChildren(creator
    ? h('a', { href: '/statement' }, 'Your statement: pending, payable, frozen and paid commission, and payouts received')
    : h('a', { href: '/payouts' }, 'Payouts: what you owe each creator, and recording a payout'));
}

form.addEventListener('submit', (e) => { e.preventDefault(); load().catch((err) => { errorBox.textContent = err.message; }); });
form.period.addEventListener('change', () => load().catch((err) => { errorBox.textContent = err.message; }));
form.group_by.addEventListener('change', () => load().catch((err) => { errorBox.textContent = err.message; }));

mountNav().then(async (session) => {
  who = session;
  if (!who.roles.includes('creator')) {
    document.getElementById('earnings-title').textContent = 'Sales through creators';
    document.getElementById('earnings-intro').textContent = 'Clicks on creators\u2019 links to your products, the sales they led to, and the commission you owe, per plan or creator.';
  }
  await loadNames();
  settlementLink();
  await load();
}).catch((err) => { errorBox.textContent = err.message; });
