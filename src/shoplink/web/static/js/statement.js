// /statement: a creator's earnings per plan and currency for a period (GET /api/v1/statements/earnings;
// the same query on the .csv operation for the download): sales, refunds, commission and where it
// stands (pending, payable, frozen, paid), totals per currency on top, payouts received in the period.
// The period's end is shown inclusive ("Through"); the API's `to` is exclusive (the next day).
import { api, h } from './api.js';
import { mountNav } from './nav.js';
import { emptyState, fmtDate, fmtMoney, scrollBox } from './ui.js';
import { SETTLEMENT_STATES, loadNames } from './money.js';

const DAY = 86400 * 1000;
const form = document.getElementById('statement-form');
const box = document.getElementById('statement');
const paidBox = document.getElementById('statement-payouts');
const errorBox = document.getElementById('statement-error');
let names = null;

const STATE_WORDS = { pending: 'Pending', payable: 'Payable', frozen: 'Frozen', paid: 'Paid' };
const COLUMNS = [
  ['plan', 'Plan', (l) => names.plan(l.plan_id)],
  ['sales', 'Sales', (l) => String(l.sales)],
  ['sales_amount', 'Sales amount', (l) => fmtMoney(l.sales_amount, l.currency)],
  ['refunds', 'Refunds', (l) => `${fmtMoney(l.refunds, l.currency)}${l.refunded_sales ? ` (${l.refunded_sales} wholly)` : ''}`],
  ['commission', 'Commission', (l) => fmtMoney(l.commission, l.currency)],
  ['commission_refunded', 'Commission refunded', (l) => fmtMoney(l.commission_refunded, l.currency)],
  ['commission_owed', 'Earned', (l) => fmtMoney(l.commission_owed, l.currency)],
  ...SETTLEMENT_STATES.map((s) => [s, STATE_WORDS[s], (l) => fmtMoney(l[s], l.currency)]),
];

const isoDay = (d) => d.toISOString().slice(0, 10);

function query() {
  const through = new Date(`${form.through.value}T00:00:00Z`);
  return new URLSearchParams({ from: form.from.value, to: isoDay(new Date(through.getTime() + DAY)) });
}

function kpis(totals) {
  return totals.flatMap((t) => SETTLEMENT_STATES.map((s) => h('div', { class: 'kpi' },
    h('span', { class: 'kpi-value', dataset: { kpi: `${s}-${t.currency}` } }, fmtMoney(t[s], t.currency)),
    h('span', { class: 'kpi-label' }, STATE_WORDS[s].toLowerCase()))));
}

function show(st) {
  form.from.value = st.from.slice(0, 10);
  form.through.value = isoDay(new Date(new Date(st.to).getTime() - 1));
  document.getElementById('statement-csv').href = `/api/v1/statements/earnings.csv?${query()}`;
  document.getElementById('statement-kpis').replaceChildren(...kpis(st.totals));
  if (!st.items.length) {
    box.replaceChildren(emptyState('No sale through your links in this period. Pick another period, or join a plan and share its links: your commission shows up here.',
      h('a', { href: '/marketplace' }, 'Marketplace')));
  } else {
    box.replaceChildren(scrollBox(h('table', { class: 'list stack', id: 'statement-table', 'aria-label': 'Earnings per plan' },
      h('thead', {}, h('tr', {}, COLUMNS.map(([key, text]) => h('th', { dataset: { col: key } }, text)))),
      h('tbody', {}, st.items.map((l) => h('tr', { dataset: { plan: l.plan_id, currency: l.currency } },
        COLUMNS.map(([key, text, value]) => h('td', { 'data-label': text, dataset: { col: key } }, value(l)))))))));
  }
  if (!st.payouts.length) {
    paidBox.replaceChildren(emptyState('No payout received in this period. Sellers pay commission once it is payable, after the return window.'));
    return;
  }
  paidBox.replaceChildren(scrollBox(h('table', { class: 'list stack', id: 'statement-payouts-table', 'aria-label': 'Payouts received' },
    h('thead', {}, h('tr', {}, ['Paid', 'Amount', 'Sales', 'Reference'].map((t) => h('th', {}, t)))),
    h('tbody', {}, st.payouts.map((p) => h('tr', { dataset: { id: p.id } },
      h('td', { 'data-label': 'Paid' }, fmtDate(p.paid_at)),
      h('td', { 'data-label': 'Amount' }, fmtMoney(p.amount, p.currency)),
      h('td', { 'data-label': 'Sales' }, String(p.conversions)),
      h('td', { 'data-label': 'Reference' }, p.reference)))))));
}

async function load(q) {
  errorBox.textContent = '';
  show(await api('GET', `/api/v1/statements/earnings${q ? `?${q}` : ''}`));
}

const fail = (err) => { errorBox.textContent = err.message; };
form.addEventListener('submit', (e) => { e.preventDefault(); load(query()).catch(fail); });

mountNav().then(async (who) => {
  names = await loadNames(who);
  await load(null); // the API's default period (the last 30 days, to now)
}).catch(fail);
