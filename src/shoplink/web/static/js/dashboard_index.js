// /dashboard: pick what to look at.
import { api, h } from './api.js';
import { mountNav } from './nav.js';

const form = document.getElementById('open-form');
form.addEventListener('submit', (e) => {
  e.preventDefault();
  if (form.id.value) location.assign(`/dashboard/${form.kind.value}/${Number(form.id.value)}`);
});

async function list(path, el, href, name) {
  try {
    const page = await api('GET', path);
    el.replaceChildren(...page.items.map((i) => h('li', {}, h('a', { href: href(i) }, name(i)))));
    if (!page.items.length) el.replaceChildren(h('li', { class: 'muted' }, 'None yet'));
  } catch { el.replaceChildren(h('li', { class: 'muted' }, 'Not available')); }
}

mountNav().then((who) => {
  list('/api/v1/videos?limit=50', document.getElementById('dash-videos'), (v) => `/dashboard/videos/${v.id}`, (v) => v.title);
  list('/api/v1/live?limit=50', document.getElementById('dash-live'), (s) => `/dashboard/live/${s.id}`, (s) => s.title);
  const me = document.getElementById('dash-me');
  me.replaceChildren();
  if (who.roles.includes('creator')) me.append(h('li', {}, h('a', { href: `/dashboard/creators/${who.account_id}` }, 'Your creator stats')));
  if (!me.children.length) me.append(h('li', { class: 'muted' }, 'Open a product, shop or plan by id above'));
});
