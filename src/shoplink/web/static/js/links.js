// /links: every anchor of the creator's videos, with its link (copy) and its QR code (PNG or SVG,
// at a chosen size: the API's ?scale= is pixels per module).
import { api, h } from './api.js';
import { mountNav } from './nav.js';
import { copyButton, emptyState } from './ui.js';

const box = document.getElementById('links');
const size = document.getElementById('qr-size');
const errorBox = document.getElementById('links-error');
const titles = new Map();

async function productTitles() {
  const [own, plans] = await Promise.all([
    api('GET', '/api/v1/products?limit=200').catch(() => ({ items: [] })),
    api('GET', '/api/v1/me/plans').catch(() => ({ items: [] }))]);
  for (const p of own.items) titles.set(p.id, p.title);
  for (const e of plans.items) for (const p of e.plan.products) titles.set(p.product_id, p.title);
}

function qrLinks(a) {
  const scale = size.value;
  const name = `shoplink-${a.code}-${scale}`;
  return h('span', { class: 'qr-tools' },
    h('a', { class: 'button-link', href: `/v1/anchors/${a.code}/qr.png?scale=${scale}`, download: `${name}.png`, dataset: { qr: 'png' } }, 'QR PNG'),
    h('a', { class: 'button-link', href: `/v1/anchors/${a.code}/qr.svg?scale=${scale}`, download: `${name}.svg`, dataset: { qr: 'svg' } }, 'QR SVG'));
}

function row(video, a) {
  const title = titles.get(a.product_id) || `Product ${a.product_id}`;
  return h('tr', { dataset: { anchorId: a.id, code: a.code } },
    h('td', { 'data-label': 'Product' }, title, a.label ? h('div', { class: 'muted small' }, a.label) : null),
    h('td', { 'data-label': 'Video' }, h('a', { href: `/studio/videos/${video.id}` }, video.title || 'Untitled video')),
    h('td', { 'data-label': 'Link' }, h('a', { class: 'link-code', href: a.link }, a.link), ' ', copyButton(a.link, 'Copy link')),
    h('td', { 'data-label': 'QR code', class: 'qr-cell' }, qrLinks(a)),
    h('td', { 'data-label': 'Stats' }, h('a', { href: `/dashboard/anchors/${a.id}` }, 'Stats')));
}

let rows = [];

function render() {
  if (!rows.length) {
    box.replaceChildren(emptyState('No links yet. Open a video in the studio and place a product on its timeline; its link appears here.',
      h('a', { href: '/studio' }, 'Go to your videos')));
    return;
  }
  box.replaceChildren(h('table', { class: 'list stack', id: 'link-table' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Product'), h('th', {}, 'Video'), h('th', {}, 'Link'), h('th', {}, 'QR code'), h('th', {}, h('span', { class: 'sr-only' }, 'Stats')))),
    h('tbody', {}, rows.map(([v, a]) => row(v, a)))));
}

async function load() {
  await productTitles();
  const videos = await api('GET', '/api/v1/videos?limit=200');
  const lists = await Promise.all(videos.items.map((v) => api('GET', `/api/v1/videos/${v.id}/anchors`)
    .then((r) => r.items.map((a) => [v, a]))));
  rows = lists.flat();
  render();
}

size.addEventListener('change', () => {
  for (const cell of box.querySelectorAll('tr[data-code]')) {
    const a = rows.find(([, x]) => x.code === cell.dataset.code);
    if (a) cell.querySelector('.qr-cell').replaceChildren(qrLinks(a[1]));
  }
});

mountNav().then(load).catch((err) => { errorBox.textContent = err.message; });
