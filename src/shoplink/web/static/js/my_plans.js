// /me/plans: invitations (accept / decline) and the plans the creator promotes (leave).
import { api, h } from './api.js';
import { mountNav } from './nav.js';
import { badge, busy, emptyState, fmtDate } from './ui.js';

const errorBox = document.getElementById('my-error');

function rates(plan) {
  return h('ul', { class: 'small' }, plan.products.map((p) => h('li', {}, p.title, ': ',
    p.override_rate != null ? `${p.override_rate} %` : `${plan.rate} %`)));
}

function act(label, cls, path, planName) {
  const b = h('button', { type: 'button', class: `${cls} small`, 'aria-label': `${label} ${planName}` }, label);
  b.addEventListener('click', () => busy(b, async () => { await api('POST', path); await load(); }, errorBox));
  return b;
}

function invitation(e) {
  const p = e.plan;
  return h('article', { class: 'plan-card', dataset: { planId: p.id } },
    h('h3', {}, p.name), h('div', {}, h('span', { class: 'rate' }, `${p.rate} %`), ' ', badge(p.status)),
    rates(p), h('p', { class: 'muted small' }, `Invited ${fmtDate(e.invited_at)}`),
    h('div', { class: 'card-actions' }, act('Accept', '', `/api/v1/plans/${p.id}/invitation/accept`, p.name),
      act('Decline', 'secondary', `/api/v1/plans/${p.id}/invitation/decline`, p.name)));
}

function enrolled(e) {
  const p = e.plan;
  return h('article', { class: 'plan-card', dataset: { planId: p.id } },
    h('h3', {}, p.name), h('div', {}, h('span', { class: 'rate' }, `${p.rate} %`), ' ', badge(p.status)),
    rates(p),
    p.pending_rate_changes.length ? h('p', { class: 'small' }, h('strong', {}, 'Rate change announced: '),
      p.pending_rate_changes.map((c) => `${c.rate ?? 'plan rate'} % from ${fmtDate(c.effective_at)}`).join('; ')) : null,
    h('p', { class: 'muted small' }, `Joined ${fmtDate(e.joined_at)}`),
    h('div', { class: 'card-actions' }, h('a', { class: 'button-link', href: '/studio' }, 'Place products on a video'),
      act('Leave', 'danger', `/api/v1/plans/${p.id}/leave`, p.name)));
}

async function load() {
  const [inv, mine] = await Promise.all([api('GET', '/api/v1/me/invitations'), api('GET', '/api/v1/me/plans')]);
  document.getElementById('invitations').replaceChildren(inv.items.length
    ? h('div', { class: 'cards' }, inv.items.map(invitation))
    : emptyState('No invitation waiting. Sellers can invite you to their targeted plans.'));
  document.getElementById('my-plans').replaceChildren(mine.items.length
    ? h('div', { class: 'cards' }, mine.items.map(enrolled))
    : emptyState('You promote no plan yet. ', h('a', { href: '/marketplace' }, 'Find one in the marketplace.')));
}

mountNav().then(load).catch((err) => { errorBox.textContent = err.message; });
