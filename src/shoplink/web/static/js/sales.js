// /sales: a seller's reported sales (GET /api/v1/conversions, oldest first, pages of 20), each with
// its amounts, attribution and settlement in words, and the actions that apply to it: refund (part or
// all; a refund id per attempt makes a retried click a no-op), freeze / unfreeze with a reason. An
// action's API error is shown next to it; on success the card is redrawn from the API's answer.
import { api, h } from './api.js';
import { mountNav } from './nav.js';
import { badge, busy, emptyState, fmtDate, fmtMoney } from './ui.js';
import { loadNames, reasonWords, settlementWords } from './money.js';

const PAGE = 20;
const form = document.getElementById('sales-form');
const box = document.getElementById('sales');
const more = document.getElementById('sales-more');
const errorBox = document.getElementById('sales-error');
let names = null;
let canAct = false;
let after = null;

function attributionWords(c) {
  if (c.attribution === 'attributed') {
    const rate = c.commission && c.commission.rate ? ` at ${c.commission.rate} %` : '';
    return `Credited to ${names.creator(c.creator_id)} through ${names.plan(c.plan_id)}${rate} (${reasonWords(c.reason)}).`;
  }
  if (c.attribution === 'pending') return 'Waiting for its click: credited when the click is stored.';
  return `Not credited: ${reasonWords(c.reason)}.`;
}

function line(label, value, key) {
  return h('p', { class: 'proof-row' }, h('span', { class: 'proof-label' }, label), h('span', { dataset: { field: key } }, value));
}

/** A small form: optional input, a button, an error slot next to it. */
function action(c, { name, label, input, run }) {
  const error = h('p', { class: 'error', role: 'alert', dataset: { errorFor: name } });
  const id = `${name}-${c.id}`;
  const field = input ? h('input', { id, name: input.name, placeholder: input.placeholder, maxlength: input.max,
    inputmode: input.inputmode, required: input.required }) : null;
  const button = h('button', { type: 'submit', class: 'secondary small', dataset: { action: name } }, label);
  const f = h('form', { class: 'proof-row', dataset: { form: name }, novalidate: true },
    field ? h('label', { for: id, class: 'inline' }, input.label) : null, field, button, error);
  f.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(button, async () => {
      const updated = await run(field ? field.value.trim() : '');
      card(updated, c.id);
    }, error);
  });
  return f;
}

function actions(c) {
  if (!canAct) return [];
  const out = [];
  const state = c.settlement && c.settlement.state;
  if (c.status !== 'refunded' && state !== 'paid') {
    const refundId = `web-${c.id}-${crypto.randomUUID()}`; // one per drawn form: a retried click refunds once
    out.push(action(c, { name: 'refund', label: 'Refund',
      input: { name: 'amount', label: `Amount (${c.currency}, empty: all ${c.net_amount})`, placeholder: c.net_amount, inputmode: 'decimal', max: 20 },
      run: (amount) => api('POST', `/api/v1/conversions/${c.id}/refund`, amount ? { amount, refund_id: refundId } : { refund_id: refundId }) }));
  }
  if (state === 'pending' || state === 'payable') {
    out.push(action(c, { name: 'freeze', label: 'Freeze',
      input: { name: 'reason', label: 'Reason', placeholder: 'chargeback review', max: 500, required: true },
      run: (reason) => api('POST', `/api/v1/conversions/${c.id}/freeze`, { reason }) }));
  }
  if (state === 'frozen') {
    out.push(action(c, { name: 'unfreeze', label: 'Unfreeze',
      input: { name: 'reason', label: 'Reason', placeholder: 'review done', max: 500, required: true },
      run: (reason) => api('POST', `/api/v1/conversions/${c.id}/unfreeze`, { reason }) }));
  }
  return out;
}

/** Draw (or redraw in place) the card of sale `c`. */
function card(c, replaceId) {
  const cur = c.currency;
  const state = c.settlement ? c.settlement.state : (c.attribution === 'pending' ? 'waiting' : 'not_credited');
  const el = h('article', { class: 'domain-card sale-card', dataset: { id: c.id, state }, 'aria-labelledby': `sale-${c.id}` },
    h('div', { class: 'domain-head' },
      h('h2', { id: `sale-${c.id}`, class: 'sale-title' }, `Order ${c.order_id}`),
      badge(state), c.status === 'refunded' ? null : (c.refunded_minor ? badge('partly_refunded') : null)),
    line('Amount', `${fmtMoney(c.amount, cur)} on ${fmtDate(c.occurred_at)}`, 'amount'),
    line('Refunded', c.refunded_minor ? `${fmtMoney(c.refunded_amount, cur)} (the buyer kept ${fmtMoney(c.net_amount, cur)})` : 'nothing', 'refunded'),
    line('Commission', c.attributed ? `${fmtMoney(c.commission_owed, cur)} owed of ${fmtMoney(c.commission_amount, cur)}` : '—', 'commission'),
    line('Credit', attributionWords(c), 'attribution'),
    line('Settlement', settlementWords(c), 'settlement'),
    h('div', { class: 'sale-actions' }, actions(c)));
  const old = replaceId != null ? box.querySelector(`[data-id="${replaceId}"]`) : null;
  if (old) old.replaceWith(el);
  return el;
}

async function load(reset) {
  if (reset) { after = null; box.replaceChildren(); }
  const q = new URLSearchParams({ limit: String(PAGE) });
  if (form.attribution.value) q.set('attribution', form.attribution.value);
  if (after) q.set('after', String(after));
  const page = await api('GET', `/api/v1/conversions?${q}`);
  if (reset && !page.items.length) {
    box.replaceChildren(emptyState(form.attribution.value
      ? 'No sale in this state. Choose \u201cAll sales\u201d to see the others.'
      : 'No sale reported yet. Your shop reports each order with POST /api/v1/conversions (with the click id it received in sl_click); open a promotion plan so creators send you buyers.',
    h('a', { href: '/plans' }, 'Promotion plans')));
  }
  box.append(...page.items.map((c) => card(c)));
  after = page.next_after;
  more.hidden = after == null;
}

const fail = (err) => { errorBox.textContent = err.message; };
form.attribution.addEventListener('change', () => load(true).catch(fail));
form.addEventListener('submit', (e) => { e.preventDefault(); load(true).catch(fail); });
more.addEventListener('click', () => busy(more, () => load(false), errorBox));

mountNav().then(async (who) => {
  canAct = who.roles.some((r) => r === 'seller' || r === 'admin');
  names = await loadNames(who);
  await load(true);
}).catch(fail);
