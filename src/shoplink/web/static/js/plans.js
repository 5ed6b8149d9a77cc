// /plans: the seller's promotion plans, and a new one (open or targeted, products with their rates).
import { api, h, showError } from './api.js';
import { mountNav } from './nav.js';
import { badge, busy, emptyState, fmtDay, scrollBox } from './ui.js';

const list = document.getElementById('plans-list');
const form = document.getElementById('plan-form');
const errorBox = document.getElementById('plan-error');
const productsBox = document.getElementById('plan-products');

function table(plans) {
  return scrollBox(h('table', { class: 'list', id: 'plans', 'aria-label': 'Plans' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Plan'), h('th', {}, 'Kind'), h('th', {}, 'Rate'), h('th', {}, 'Products'), h('th', {}, 'State'), h('th', {}, 'Ends'))),
    h('tbody', {}, plans.map((p) => h('tr', { dataset: { planId: p.id } },
      h('td', {}, h('a', { href: `/plans/${p.id}` }, p.name)), h('td', {}, p.kind),
      h('td', { class: 'num' }, p.rate != null ? `${p.rate} %` : '—'), h('td', { class: 'num' }, String(p.products.length)),
      h('td', {}, badge(p.status)), h('td', {}, p.ends_at ? fmtDay(p.ends_at) : 'open-ended'))))));
}

async function loadPlans() {
  const page = await api('GET', '/api/v1/plans?limit=200');
  list.replaceChildren(page.items.length ? table(page.items)
    : emptyState('No plan yet. Create one below so creators can promote your products and earn a commission.'));
}

async function loadProducts() {
  const items = [];
  let after = 0;
  for (;;) {  // every listed product of every shop (a plan can span shops)
    const page = await api('GET', `/api/v1/products?status=active&limit=200&after=${after}`);
    items.push(...page.items);
    if (page.next_after == null) break;
    after = page.next_after;
  }
  if (!items.length) {
    productsBox.replaceChildren(emptyState('You have no listed products yet. ', h('a', { href: '/shops' }, 'Add products to a shop first.')));
    return;
  }
  productsBox.replaceChildren(h('ul', { class: 'plain pick-list' }, items.map((p) => {
    const id = `pp-${p.id}`;
    return h('li', { class: 'pick' },
      h('label', { class: 'check', for: id }, h('input', { type: 'checkbox', id, name: 'product', value: p.id }), p.title),
      h('label', { class: 'sr-only', for: `${id}-rate` }, `Own rate for ${p.title} (%)`),
      h('input', { id: `${id}-rate`, class: 'rate-input', name: `rate-${p.id}`, inputmode: 'decimal', placeholder: 'plan rate', maxlength: '6' }));
  })));
}

function isoOrNull(local) {
  return local ? new Date(local).toISOString() : null;
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  const products = [...form.querySelectorAll('input[name=product]:checked')].map((c) => {
    const own = form.querySelector(`[name="rate-${c.value}"]`).value.trim();
    return own ? { product_id: Number(c.value), rate: own } : { product_id: Number(c.value) };
  });
  const body = { name: form.name.value.trim(), kind: form.kind.value, rate: form.rate.value.trim(), products };
  if (form.starts_at.value) body.starts_at = isoOrNull(form.starts_at.value);
  if (form.ends_at.value) body.ends_at = isoOrNull(form.ends_at.value);
  busy(document.getElementById('plan-create'), async () => {
    try {
      const plan = await api('POST', '/api/v1/plans', body);
      location.assign(`/plans/${plan.id}`);
    } catch (err) { showError(err, form, errorBox); }
  });
});

mountNav().then(() => Promise.all([loadPlans(), loadProducts()])).catch((err) => { errorBox.textContent = err.message; });
