// /studio: the creator's videos and an upload with a progress bar.
import { api, ApiError, fmtTime, h, showError, upload } from './api.js';
import { mountNav } from './nav.js';

const tbody = document.querySelector('#videos tbody');

function row(v) {
  return h('tr', { dataset: { videoId: v.id } },
    h('td', {}, h('a', { href: `/studio/videos/${v.id}` }, v.title || `Video ${v.id}`),
      v.playable === false ? h('div', { class: 'warning small', dataset: { unplayable: 'true' } }, `Browsers cannot play it (${v.codec})`) : null),
    h('td', { 'data-label': 'Length' }, v.duration_s != null ? fmtTime(v.duration_s) : '—'),
    h('td', { 'data-label': 'Size' }, v.width && v.height ? `${v.width}×${v.height}` : ''),
    h('td', { 'data-label': 'Uploaded' }, v.created_at ? new Date(v.created_at).toLocaleString() : ''),
    h('td', {}, h('a', { href: `/dashboard/videos/${v.id}` }, 'Stats')));
}

async function load() {
  const page = await api('GET', '/api/v1/videos?limit=200');
  tbody.replaceChildren(...page.items.map(row));
  document.getElementById('videos-empty').hidden = page.items.length > 0;
}

const form = document.getElementById('upload-form');
const bar = document.getElementById('upload-progress');
const pct = document.getElementById('upload-percent');
const errorBox = document.getElementById('upload-error');

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const file = form.file.files[0];
  if (!file) {
    showError(new ApiError(422, { error: { message: 'choose a video file', details: [{ field: 'file' }] } }), form, errorBox);
    return;
  }
  const data = new FormData();
  if (form.title.value.trim()) data.append('title', form.title.value.trim());
  data.append('file', file);
  const button = document.getElementById('upload-button');
  button.disabled = true;
  bar.hidden = false;
  bar.value = 0;
  errorBox.textContent = '';
  try {
    const video = await upload('/api/v1/videos', data, (f) => {
      bar.value = Math.round(f * 100);
      pct.textContent = f < 1 ? `${Math.round(f * 100)}%` : 'processing…';
    });
    pct.textContent = 'done';
    location.assign(`/studio/videos/${video.id}`);
  } catch (err) {
    pct.textContent = '';
    showError(err, form, errorBox);
  } finally {
    button.disabled = false;
  }
});

mountNav().then(load).catch((err) => { errorBox.textContent = err.message; });
