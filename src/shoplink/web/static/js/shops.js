// /shops: the seller's shops, and a new one (name, first domain, fallback page).
import { api, h, showError } from './api.js';
import { mountNav } from './nav.js';
import { badge, busy, emptyState, formValues } from './ui.js';

const list = document.getElementById('shops-list');
const form = document.getElementById('shop-form');
const errorBox = document.getElementById('shop-error');

function table(shops) {
  return h('table', { class: 'list', id: 'shops' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Shop'), h('th', {}, 'Domains'), h('th', {}, ''))),
    h('tbody', {}, shops.map((s) => h('tr', { dataset: { shopId: s.id } },
      h('td', {}, h('a', { href: `/shops/${s.id}` }, s.name)),
      h('td', {}, s.domains.map((d) => h('span', { class: 'domain' }, d.display_name || d.domain, ' ', badge(d.state)))),
      h('td', { class: 'actions' }, h('a', { class: 'button-link', href: `/shops/${s.id}/products` }, 'Products'))))));
}

async function load() {
  const page = await api('GET', '/api/v1/shops?limit=200');
  list.replaceChildren(page.items.length ? table(page.items)
    : emptyState('No shop yet. Create one below with the domain your product pages are on; you will then publish a DNS record or a file to prove it is yours.'));
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const v = formValues(form);
  const body = { name: v.name || '', domains: v.domain ? [v.domain] : [] };
  if (v.fallback_url) body.fallback_url = v.fallback_url;
  await busy(document.getElementById('shop-create'), async () => {
    try {
      const shop = await api('POST', '/api/v1/shops', body);
      location.assign(`/shops/${shop.id}`);
    } catch (err) { showError(err, form, errorBox); }
  });
});

mountNav().then(load).catch((err) => { errorBox.textContent = err.message; });
