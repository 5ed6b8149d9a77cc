// /payouts: what the seller owes each creator per currency (GET /api/v1/statements/payouts-due),
// "Record payout" with the transfer's reference on every line with something payable
// (POST /api/v1/payouts; the same reference again answers the same payout), and the payouts made.
// There is no list of payouts in the API: they are found through the payout ids of the seller's
// paid sales (GET /api/v1/conversions, at most MAX_PAGES pages), then GET /api/v1/payouts/{id}.
import { api, h } from './api.js';
import { mountNav } from './nav.js';
import { busy, emptyState, fmtDate, fmtMoney, scrollBox } from './ui.js';
import { loadNames } from './money.js';

const MAX_PAGES = 5;
const box = document.getElementById('payouts');
const made = document.getElementById('payouts-made');
const errorBox = document.getElementById('payouts-error');
const statusBox = document.getElementById('payouts-status');
let names = null;

const COLUMNS = [
  ['creator', 'Creator', (l) => names.creator(l.creator_id)],
  ['sales', 'Sales', (l) => String(l.sales)],
  ['commission_owed', 'Commission owed', (l) => fmtMoney(l.commission_owed, l.currency)],
  ['pending', 'Pending', (l) => fmtMoney(l.pending, l.currency)],
  ['payable', 'Payable now', (l) => fmtMoney(l.payable, l.currency)],
  ['frozen', 'Frozen', (l) => fmtMoney(l.frozen, l.currency)],
  ['paid', 'Paid', (l) => fmtMoney(l.paid, l.currency)],
];

function payForm(l) {
  if (!l.payable_minor) return h('span', { class: 'muted' }, 'Nothing payable yet');
  const id = `ref-${l.creator_id}-${l.currency}`;
  const input = h('input', { id, name: 'reference', maxlength: 200, required: true, placeholder: 'bank transfer id' });
  const error = h('p', { class: 'error', role: 'alert', dataset: { errorFor: 'reference' } });
  const button = h('button', { type: 'submit', class: 'small', dataset: { action: 'pay' } }, `Record payout of ${fmtMoney(l.payable, l.currency)}`);
  const f = h('form', { class: 'proof-row', novalidate: true }, h('label', { for: id, class: 'inline' }, 'Reference'), input, button, error);
  f.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(button, async () => {
      const p = await api('POST', '/api/v1/payouts', { creator_id: l.creator_id, currency: l.currency, reference: input.value.trim() });
      statusBox.textContent = `Recorded payout ${p.id}: ${fmtMoney(p.amount, p.currency)} to ${names.creator(p.creator_id)} for ${p.conversions} sale(s), reference ${p.reference}.`;
      await load();
    }, error);
  });
  return f;
}

function kpis(totals) {
  return totals.flatMap((t) => [
    h('div', { class: 'kpi' }, h('span', { class: 'kpi-value', dataset: { kpi: `payable-${t.currency}` } }, fmtMoney(t.payable, t.currency)), h('span', { class: 'kpi-label' }, 'payable now')),
    h('div', { class: 'kpi' }, h('span', { class: 'kpi-value', dataset: { kpi: `pending-${t.currency}` } }, fmtMoney(t.pending, t.currency)), h('span', { class: 'kpi-label' }, 'pending (return window)')),
  ]);
}

async function payoutsMade() {
  const ids = new Set();
  let after = null;
  for (let n = 0; n < MAX_PAGES; n += 1) {
    const q = new URLSearchParams({ limit: '500', attribution: 'attributed' });
    if (after) q.set('after', String(after));
    const page = await api('GET', `/api/v1/conversions?${q}`);
    for (const c of page.items) if (c.settlement && c.settlement.payout_id) ids.add(c.settlement.payout_id);
    after = page.next_after;
    if (after == null) break;
  }
  const list = await Promise.all([...ids].sort((a, b) => b - a).slice(0, 50).map((id) => api('GET', `/api/v1/payouts/${id}`)));
  if (!list.length) {
    made.replaceChildren(emptyState('No payout recorded yet. When a creator\u2019s commission is payable, pay them and record the payout above.'));
    return;
  }
  made.replaceChildren(scrollBox(h('table', { class: 'list stack', id: 'payouts-made-table', 'aria-label': 'Payouts recorded' },
    h('thead', {}, h('tr', {}, ['Paid', 'Creator', 'Amount', 'Sales', 'Reference'].map((t) => h('th', {}, t)))),
    h('tbody', {}, list.map((p) => h('tr', { dataset: { id: p.id } },
      h('td', { 'data-label': 'Paid' }, fmtDate(p.paid_at)),
      h('td', { 'data-label': 'Creator' }, names.creator(p.creator_id)),
      h('td', { 'data-label': 'Amount', class: 'num' }, fmtMoney(p.amount, p.currency)),
      h('td', { 'data-label': 'Sales', class: 'num' }, String(p.conversions)),
      h('td', { 'data-label': 'Reference' }, p.reference)))))));
}

async function load() {
  const due = await api('GET', '/api/v1/statements/payouts-due');
  document.getElementById('payouts-kpis').replaceChildren(...kpis(due.totals));
  if (!due.items.length) {
    box.replaceChildren(emptyState('No commission owed yet. Creators earn it on the sales they bring through your promotion plans; it shows up here once a sale is credited.',
      h('a', { href: '/plans' }, 'Promotion plans')));
  } else {
    box.replaceChildren(scrollBox(h('table', { class: 'list stack', id: 'payouts-table', 'aria-label': 'Payouts due' },
      h('thead', {}, h('tr', {}, COLUMNS.map(([key, text]) => h('th', { dataset: { col: key } }, text)), h('th', {}, 'Payout'))),
      h('tbody', {}, due.items.map((l) => h('tr', { dataset: { creator: l.creator_id, currency: l.currency } },
        COLUMNS.map(([key, text, value]) => h('td', { 'data-label': text, dataset: { col: key } }, value(l))),
        h('td', { 'data-label': 'Payout' }, payForm(l))))))));
  }
  await payoutsMade();
}

mountNav().then(async (who) => {
  names = await loadNames(who);
  await load();
}).catch((err) => { errorBox.textContent = err.message; });
