// /plans/{id}: products with their rates, rate changes with their notice date, invitations,
// enrolments, and pause / resume / end.
import { api, h, showError } from './api.js';
import { mountNav } from './nav.js';
import { badge, busy, emptyState, fmtDate, scrollBox } from './ui.js';

const ID = Number(document.getElementById('plan-page').dataset.planId);
const errorBox = document.getElementById('plan-error');
const titles = new Map();  // product id -> title
let plan = null;

function inForce() {  // the plan rate in force now (a cut announced waits for its notice date)
  return plan.rate_in_force_bp != null ? (plan.rate_in_force_bp / 100).toFixed(2) : plan.rate;
}

function pendingFor(productId) {
  return plan.pending_rate_changes.filter((c) => (c.product_id ?? null) === productId)
    .map((c) => `${c.rate != null ? `${c.rate} %` : 'plan rate'} from ${fmtDate(c.effective_at)}`).join('; ');
}

function productTable() {
  if (!plan.products.length) return emptyState('No products in this plan: add one below.');
  const planPending = pendingFor(null);
  return scrollBox(h('table', { class: 'list', id: 'plan-product-table', 'aria-label': 'Products and rates' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Product'), h('th', {}, 'Rate'), h('th', {}, 'Announced'))),
    h('tbody', {}, plan.products.map((p) => h('tr', { dataset: { productId: p.product_id } },
      h('td', {}, p.title),
      h('td', { class: 'num' }, p.override_rate != null ? `${p.override_rate} % (own rate)` : `${inForce()} % (plan rate)`),
      h('td', { class: 'small' }, (p.override_rate != null ? pendingFor(p.product_id) : planPending) || '—'))))));
}

function changeRow(c, now) {
  const pending = new Date(c.effective_at) > now;
  return h('tr', { class: pending ? 'pending' : '' },
    h('td', {}, c.product_id ? (titles.get(c.product_id) || `Product ${c.product_id}`) : 'Whole plan'),
    h('td', { class: 'num' }, c.rate != null ? `${c.rate} %` : 'plan rate'),
    h('td', {}, fmtDate(c.announced_at)),
    h('td', {}, pending ? h('strong', {}, `from ${fmtDate(c.effective_at)}`) : fmtDate(c.effective_at)));
}

async function loadHistory() {
  const history = await api('GET', `/api/v1/plans/${ID}/rate-changes`);
  const now = new Date();
  document.getElementById('rate-history').replaceChildren(scrollBox(h('table', { class: 'list', id: 'rate-table' },
    h('caption', {}, 'Rate history (newest first)'),
    h('thead', {}, h('tr', {}, h('th', {}, 'For'), h('th', {}, 'Rate'), h('th', {}, 'Announced'), h('th', {}, 'In force'))),
    h('tbody', {}, [...history.items].reverse().map((c) => changeRow(c, now))))));
}

async function loadEnrolments() {
  const box = document.getElementById('enrolments');
  const list = await api('GET', `/api/v1/plans/${ID}/enrolments`);
  if (!list.items.length) {
    box.replaceChildren(emptyState(plan.kind === 'open'
      ? 'No creator has joined yet. Open plans are listed in the creators\u2019 marketplace.'
      : 'No creator yet: invite one above.'));
    return;
  }
  box.replaceChildren(scrollBox(h('table', { class: 'list', id: 'enrolment-table', 'aria-label': 'Creators' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Creator'), h('th', {}, 'Status'), h('th', {}, 'Invited'), h('th', {}, 'Joined'))),
    h('tbody', {}, list.items.map((e) => h('tr', { dataset: { creatorId: e.creator_id } },
      h('td', {}, h('a', { href: `/dashboard/creators/${e.creator_id}` }, e.creator_name || `Creator ${e.creator_id}`)),
      h('td', {}, badge(e.status)), h('td', {}, fmtDate(e.invited_at)), h('td', {}, fmtDate(e.joined_at))))))));
}

async function loadChoices() {
  const page = await api('GET', '/api/v1/products?status=active&limit=200');
  for (const p of page.items) titles.set(p.id, p.title);
  for (const p of plan.products) titles.set(p.product_id, p.title);
  const inPlan = new Set(plan.products.map((p) => p.product_id));
  const add = document.getElementById('add-product');
  const free = page.items.filter((p) => !inPlan.has(p.id));
  add.replaceChildren(...free.map((p) => h('option', { value: p.id }, p.title)));
  document.getElementById('add-product-go').disabled = !free.length;
  document.getElementById('add-product-form').hidden = plan.status === 'ended';
  const target = document.getElementById('rate-target');
  target.replaceChildren(h('option', { value: '' }, 'the whole plan'),
    ...plan.products.map((p) => h('option', { value: p.product_id }, p.title)));
}

async function load() {
  plan = await api('GET', `/api/v1/plans/${ID}`);
  document.getElementById('plan-title').textContent = plan.name;
  document.title = `${plan.name} · shoplink`;
  document.getElementById('plan-state').replaceChildren(badge(plan.status));
  document.getElementById('plan-summary').textContent =
    `${plan.kind === 'open' ? 'Open to every creator' : 'Targeted: invited creators only'} · ${inForce()} % commission`
    + ` · from ${fmtDate(plan.starts_at)}${plan.ends_at ? ` until ${fmtDate(plan.ends_at)}` : ''}`
    + (plan.pending_rate_changes.length ? ` · ${plan.pending_rate_changes.length} rate change(s) announced` : '');
  document.getElementById('plan-pause').disabled = plan.status !== 'active' && plan.status !== 'scheduled';
  document.getElementById('plan-resume').disabled = plan.status !== 'paused';
  document.getElementById('plan-end').disabled = plan.status === 'ended';
  document.getElementById('invite-form').hidden = plan.kind !== 'targeted' || plan.status === 'ended';
  document.getElementById('plan-products').replaceChildren(productTable());
  await loadChoices();
  await Promise.all([loadHistory(), loadEnrolments()]);
}

for (const [id, action] of [['plan-pause', 'pause'], ['plan-resume', 'resume'], ['plan-end', 'end']]) {
  const button = document.getElementById(id);
  button.addEventListener('click', () => busy(button, async () => {
    if (action === 'end' && !confirm('End this plan? Links stop earning commission; this cannot be undone.')) return;
    await api('POST', `/api/v1/plans/${ID}/${action}`);
  }, errorBox).then(() => load()));  // after busy() has re-enabled the button: load() decides
}

const addForm = document.getElementById('add-product-form');
addForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const body = { product_id: Number(addForm.product_id.value) };
  if (addForm.rate.value.trim()) body.rate = addForm.rate.value.trim();
  busy(document.getElementById('add-product-go'), async () => {
    try {
      await api('POST', `/api/v1/plans/${ID}/products`, body);
      addForm.reset();
      await load();
    } catch (err) { showError(err, addForm, document.getElementById('add-product-error')); }
  });
});

const rateForm = document.getElementById('rate-form');
rateForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const body = { rate: rateForm.rate.value.trim() || null };
  if (rateForm.product_id.value) body.product_id = Number(rateForm.product_id.value);
  const status = document.getElementById('rate-status');
  status.textContent = '';
  busy(document.getElementById('rate-go'), async () => {
    try {
      const change = await api('POST', `/api/v1/plans/${ID}/rate-changes`, body);
      status.textContent = change.kind === 'cut'
        ? `Announced: the new rate applies from ${fmtDate(change.effective_at)} (notice period).`
        : 'Applied now.';
      rateForm.rate.value = '';
      await load();
    } catch (err) { showError(err, rateForm, document.getElementById('rate-error')); }
  });
});

const inviteForm = document.getElementById('invite-form');
inviteForm.addEventListener('submit', (e) => {
  e.preventDefault();
  busy(document.getElementById('invite-go'), async () => {
    try {
      await api('POST', `/api/v1/plans/${ID}/invitations`, { creator_id: Number(inviteForm.creator_id.value) });
      inviteForm.reset();
      await loadEnrolments();
    } catch (err) { showError(err, inviteForm, document.getElementById('invite-error')); }
  });
});

mountNav().then(load).catch((err) => { errorBox.textContent = err.message; });
