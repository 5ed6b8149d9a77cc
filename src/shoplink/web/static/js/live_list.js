// /studio/live: the host's live sessions; create one.
import { api, h, showError } from './api.js';
import { mountNav } from './nav.js';

const form = document.getElementById('live-form');
const errorBox = document.getElementById('live-error');

async function load() {
  const page = await api('GET', '/api/v1/live?limit=200');
  document.querySelector('#sessions tbody').replaceChildren(...page.items.map((s) => h('tr', { dataset: { liveId: s.id } },
    h('td', {}, h('a', { href: `/studio/live/${s.id}` }, s.title)),
    h('td', {}, h('span', { class: `status ${s.status}` }, s.status)),
    h('td', {}, s.started_at ? new Date(s.started_at).toLocaleString() : '—'),
    h('td', {}, h('a', { href: `/dashboard/live/${s.id}` }, 'Stats')))));
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    const s = await api('POST', '/api/v1/live', { title: form.title.value.trim() });
    location.assign(`/studio/live/${s.id}`);
  } catch (err) { showError(err, form, errorBox); }
});

mountNav().then(load).catch((err) => { errorBox.textContent = err.message; });
