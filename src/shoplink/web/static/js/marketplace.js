// /marketplace: open plans a creator can join; search (plan and product names), a minimum
// commission (the API's min_rate), sort; join in place.
import { api, h } from './api.js';
import { mountNav } from './nav.js';
import { badge, busy, emptyState, fmtDay } from './ui.js';

const form = document.getElementById('market-filters');
const box = document.getElementById('market');
const errorBox = document.getElementById('market-error');
let plans = [];

function pct(bp) { return `${(bp / 100).toFixed(2)} %`; }

function card(p) {
  const mine = p.my_enrolment && p.my_enrolment.status;
  const action = h('div', { class: 'card-actions' });
  if (mine === 'enrolled') action.append(badge('enrolled'), h('a', { href: '/me/plans' }, 'My plans'));
  else if (mine === 'invited') action.append(badge('invited'), h('a', { href: '/me/plans' }, 'Answer the invitation'));
  else {
    const join = h('button', { type: 'button', dataset: { join: p.id }, 'aria-label': `Join ${p.name}` }, 'Join');
    join.addEventListener('click', () => busy(join, async () => {
      await api('POST', `/api/v1/plans/${p.id}/join`);
      await load();
    }, errorBox));
    action.append(join);
  }
  return h('article', { class: 'plan-card', dataset: { planId: p.id } },
    h('h3', {}, p.name),
    h('div', {}, h('span', { class: 'rate' }, `up to ${pct(p.best_rate_bp)}`), ' ', badge(p.status)),
    h('ul', {}, p.products.slice(0, 5).map((x) => h('li', {}, x.title,
      x.override_rate != null ? h('span', { class: 'muted' }, ` · ${x.override_rate} %`) : null))),
    p.products.length > 5 ? h('p', { class: 'muted small' }, `and ${p.products.length - 5} more`) : null,
    h('p', { class: 'muted small' }, p.ends_at ? `Ends ${fmtDay(p.ends_at)}` : 'No end date',
      p.pending_rate_changes.length ? ' · a rate change is announced' : ''),
    action);
}

function render() {
  const q = form.q.value.trim().toLowerCase();
  let shown = plans.filter((p) => !q || p.name.toLowerCase().includes(q)
    || p.products.some((x) => x.title.toLowerCase().includes(q)));
  const sort = form.sort.value;
  shown = [...shown].sort((a, b) => (sort === 'rate' ? b.best_rate_bp - a.best_rate_bp
    : sort === 'new' ? b.id - a.id : a.name.localeCompare(b.name)));
  document.getElementById('market-count').textContent = `${shown.length} plan(s)`;
  box.replaceChildren(...(shown.length ? shown.map(card) : [emptyState(plans.length
    ? 'No plan matches: lower the minimum commission or clear the search.'
    : 'No open plan right now. Sellers\u2019 invitations appear under My plans.', h('a', { href: '/me/plans' }, 'My plans'))]));
}

async function load() {
  const min = form.min_rate.value.trim();
  const items = [];
  let after = 0;
  for (;;) {
    const q = new URLSearchParams({ limit: '100', after: String(after) });
    if (min) q.set('min_rate', min);
    const page = await api('GET', `/api/v1/marketplace/plans?${q}`);
    items.push(...page.items);
    if (page.next_after == null) break;
    after = page.next_after;
  }
  plans = items;
  render();
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  errorBox.textContent = '';
  busy(document.getElementById('market-go'), load, errorBox);
});
form.sort.addEventListener('change', render);
form.q.addEventListener('input', render);

mountNav().then(load).catch((err) => { errorBox.textContent = err.message; });
