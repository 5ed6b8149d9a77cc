// /shops/{id}/products: list (search, status, pages), add / edit / delist with an image preview,
// and a CSV import that is checked (dry run, every row's problems shown) before anything is stored.
import { api, ApiError, h, session, showError } from './api.js';
import { mountNav } from './nav.js';
import { badge, busy, emptyState, fmtMoney, formValues, scrollBox } from './ui.js';

const SHOP = Number(document.getElementById('products-page').dataset.shopId);
const PAGE = 20;
const listBox = document.getElementById('products');
const errorBox = document.getElementById('products-error');
const search = document.getElementById('search-form');
const form = document.getElementById('product-form');
const csvForm = document.getElementById('csv-form');
let cursors = [0];  // the `after` of each page seen; the last is the current page's
let nextAfter = null;
let current = [];

function row(p) {
  const edit = h('button', { type: 'button', class: 'secondary small' }, 'Edit');
  edit.addEventListener('click', () => fill(p));
  const delist = h('button', { type: 'button', class: 'danger small', disabled: p.status !== 'active' }, 'Delist');
  delist.addEventListener('click', () => busy(delist, async () => {
    await api('DELETE', `/api/v1/products/${p.id}`);
    await load();
  }, errorBox));
  return h('tr', { dataset: { productId: p.id } },
    h('td', { class: 'img-cell' }, p.image_url ? h('img', { class: 'thumb-sm', src: p.image_url, alt: '' }) : h('span', { class: 'noimg thumb-sm' })),
    h('td', { 'data-label': 'Product' }, h('a', { href: p.url, rel: 'noopener', target: '_blank' }, p.title), p.sku ? h('div', { class: 'muted small' }, p.sku) : null),
    h('td', { class: 'num', 'data-label': 'Price' }, fmtMoney(p.price, p.currency)),
    h('td', { 'data-label': 'Status' }, badge(p.status)),
    h('td', { class: 'actions' }, edit, ' ', delist, ' ', h('a', { class: 'button-link', href: `/dashboard/products/${p.id}` }, 'Stats')));
}

async function load() {
  const q = new URLSearchParams({ limit: String(PAGE), after: String(cursors[cursors.length - 1]) });
  if (search.q.value.trim()) q.set('q', search.q.value.trim());
  if (search.status.value) q.set('status', search.status.value);
  const page = await api('GET', `/api/v1/shops/${SHOP}/products?${q}`);
  current = page.items;
  nextAfter = page.next_after ?? null;
  if (current.length) {
    listBox.replaceChildren(scrollBox(h('table', { class: 'list stack', id: 'product-table', 'aria-label': 'Products' },
      h('thead', {}, h('tr', {}, h('th', {}, h('span', { class: 'sr-only' }, 'Image')), h('th', {}, 'Product'), h('th', {}, 'Price'), h('th', {}, 'Status'), h('th', {}, h('span', { class: 'sr-only' }, 'Actions')))),
      h('tbody', {}, current.map(row)))));
  } else {
    listBox.replaceChildren(emptyState(search.q.value.trim() || cursors.length > 1
      ? 'No product matches. Try another search, or add one below.'
      : 'No products yet. Add one below, or import many from a CSV file.'));
  }
  document.getElementById('page-prev').disabled = cursors.length <= 1;
  document.getElementById('page-next').disabled = nextAfter === null;
  document.getElementById('page-info').textContent = `Page ${cursors.length}`;
}

search.addEventListener('submit', (e) => { e.preventDefault(); cursors = [0]; load().catch((err) => { errorBox.textContent = err.message; }); });
document.getElementById('page-next').addEventListener('click', () => { if (nextAfter !== null) { cursors.push(nextAfter); load(); } });
document.getElementById('page-prev').addEventListener('click', () => { if (cursors.length > 1) { cursors.pop(); load(); } });

// ---- add / edit ----
const preview = document.getElementById('p-preview');
const noPreview = document.getElementById('p-preview-empty');
function showPreview() {
  const url = form.image_url.value.trim();
  let ok = false;
  try { ok = ['http:', 'https:'].includes(new URL(url).protocol); } catch { ok = false; }
  preview.hidden = !ok;
  noPreview.hidden = ok;
  if (ok && preview.getAttribute('src') !== url) preview.src = url;
}
preview.addEventListener('error', () => { preview.hidden = true; noPreview.hidden = false; noPreview.textContent = 'The image does not load'; });
preview.addEventListener('load', () => { noPreview.textContent = 'No image'; });
form.image_url.addEventListener('input', showPreview);

function fill(p) {
  form.id.value = String(p.id);
  for (const k of ['title', 'url', 'price', 'currency', 'sku', 'image_url']) form[k].value = p[k] ?? '';
  document.getElementById('product-form-title').textContent = `Edit ${p.title}`;
  document.getElementById('product-save').textContent = 'Save changes';
  document.getElementById('product-cancel').hidden = false;
  showPreview();
  form.title.focus();
}

function clear() {
  form.reset();
  form.id.value = '';
  document.getElementById('product-form-title').textContent = 'Add a product';
  document.getElementById('product-save').textContent = 'Add product';
  document.getElementById('product-cancel').hidden = true;
  showPreview();
}
document.getElementById('product-cancel').addEventListener('click', clear);

form.addEventListener('submit', (e) => {
  e.preventDefault();
  const status = document.getElementById('product-status');
  status.textContent = '';
  const v = formValues(form);
  const editing = v.id;
  delete v.id;
  const body = editing ? { sku: null, image_url: null, price: null, currency: null, ...v } : v;
  if (body.currency) body.currency = body.currency.toUpperCase();
  busy(document.getElementById('product-save'), async () => {
    try {
      const p = editing ? await api('PATCH', `/api/v1/products/${editing}`, body)
        : await api('POST', `/api/v1/shops/${SHOP}/products`, body);
      status.textContent = editing ? `Saved ${p.title}.` : `Added ${p.title}.`;
      clear();
      await load();
    } catch (err) { showError(err, form, document.getElementById('product-error')); }
  });
});

// ---- CSV import ----
let csvText = null;
const csvBox = document.getElementById('csv-preview');
const csvError = document.getElementById('csv-error');
const csvStatus = document.getElementById('csv-status');
const importButton = document.getElementById('csv-import');

function parseCsvLines(text) {  // for showing rows next to their problems (the server parses for real)
  return text.replace(/^\uFEFF/, '').split(/\r?\n/).filter((l) => l.trim() !== '');
}

async function post(dryRun) {
  const { csrf_token: csrf } = await session();
  const r = await fetch(`/api/v1/shops/${SHOP}/products/bulk${dryRun ? '?dry_run=true' : ''}`, {
    method: 'POST', credentials: 'same-origin', body: csvText,
    headers: { 'Content-Type': 'text/csv', Accept: 'application/json', 'X-CSRF-Token': csrf } });
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(r.status, body);
  return body;
}

function problems(details) {
  const lines = parseCsvLines(csvText);
  const byRow = new Map();
  for (const d of details) {
    if (typeof d.row !== 'number') continue;
    if (!byRow.has(d.row)) byRow.set(d.row, []);
    byRow.get(d.row).push(`${d.field ? `${d.field}: ` : ''}${d.message}`);
  }
  return scrollBox(h('table', { class: 'list', id: 'csv-problems' },
    h('caption', {}, `${byRow.size} row(s) to fix; nothing was stored`),
    h('thead', {}, h('tr', {}, h('th', {}, 'Line'), h('th', {}, 'Row'), h('th', {}, 'Problem'))),
    h('tbody', {}, [...byRow.entries()].map(([n, msgs]) => h('tr', { class: 'bad', dataset: { row: n } },
      h('td', { class: 'num' }, String(n + 2)), h('td', {}, h('code', {}, lines[n + 1] || '')),
      h('td', {}, msgs.join('; ')))))));
}

function previewTable(result) {
  return scrollBox(h('table', { class: 'list', id: 'csv-ok' },
    h('caption', {}, `${result.count} product(s) ready to import`),
    h('thead', {}, h('tr', {}, h('th', {}, 'Title'), h('th', {}, 'SKU'), h('th', {}, 'Page'))),
    h('tbody', {}, result.items.map((p) => h('tr', {}, h('td', {}, p.title), h('td', {}, p.sku || ''), h('td', { class: 'url' }, p.url))))));
}

csvForm.addEventListener('submit', (e) => {
  e.preventDefault();
  importButton.disabled = true;
  csvBox.replaceChildren();
  csvStatus.textContent = '';
  const file = csvForm.file.files[0];
  if (!file) { csvError.textContent = 'Choose a CSV file first.'; return; }
  busy(document.getElementById('csv-check'), async () => {
    csvText = await file.text();
    const result = await post(true);  // the check's report: 200, valid or not
    if (result.valid) {
      csvBox.replaceChildren(previewTable(result));
      csvStatus.textContent = `All ${result.count} rows are valid. Press Import to add them.`;
      importButton.disabled = false;
    } else {
      csvError.textContent = result.message;
      if (result.errors.some((d) => typeof d.row === 'number')) csvBox.replaceChildren(problems(result.errors));
    }
  }, csvError);
});

importButton.addEventListener('click', () => busy(importButton, async () => {
  const result = await post(false);
  csvStatus.textContent = `Imported ${result.items.length} product(s).`;
  csvBox.replaceChildren();
  csvForm.reset();
  csvText = null;
  cursors = [0];
  await load();
}, csvError).then(() => { importButton.disabled = csvText === null; }));

mountNav().then(async () => {
  const shop = await api('GET', `/api/v1/shops/${SHOP}`);
  document.getElementById('shop-link').textContent = shop.name;
  document.title = `Products of ${shop.name} · shoplink`;
  await load();
}).catch((err) => { errorBox.textContent = err.message; });
