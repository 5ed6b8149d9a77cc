// /shops/{id}: edit the shop, its domains with the proof to publish, their state, "Check now".
import { api, h, showError } from './api.js';
import { mountNav } from './nav.js';
import { badge, busy, copyButton, emptyState, fmtDate } from './ui.js';

const ID = Number(document.getElementById('shop-page').dataset.shopId);
const errorBox = document.getElementById('shop-error');
const editForm = document.getElementById('shop-edit');
const domainForm = document.getElementById('domain-form');
const domainsBox = document.getElementById('domains');
const STATE_TEXT = {
  pending: 'Waiting for the proof',
  verified: 'Verified: links lead here',
  failed: 'Proof not found: links keep working for a grace period if it was verified before',
  lapsed: 'Lapsed: the proof has been missing too long; links no longer lead here',
};

function proofRow(label, value) {
  return h('div', { class: 'proof-row' }, h('span', { class: 'proof-label' }, label),
    h('code', { class: 'proof-value' }, value), copyButton(value));
}

function domainCard(d) {
  const v = d.verification || {};
  const slug = d.domain.replace(/[^a-z0-9]/gi, '-');
  const status = h('p', { class: 'muted small', role: 'status', id: `check-${slug}` });
  const check = h('button', { type: 'button', class: 'small', dataset: { action: 'verify' } }, 'Check now');
  check.addEventListener('click', () => busy(check, async () => {
    const fresh = await api('POST', `/api/v1/shops/${ID}/domains/${encodeURIComponent(d.domain)}/verify`);
    await load();
    const now = document.getElementById(`check-${slug}`);
    if (now) now.textContent = fresh.state === 'verified' ? 'Proof found: verified.' : `Not yet: ${(fresh.failure && fresh.failure.message) || fresh.state}`;
  }, status));
  const remove = h('button', { type: 'button', class: 'danger small', dataset: { action: 'remove' } }, 'Remove');
  remove.addEventListener('click', () => busy(remove, async () => {
    if (!confirm(`Remove ${d.domain}? Links to its products stop working.`)) return;
    await api('DELETE', `/api/v1/shops/${ID}/domains/${encodeURIComponent(d.domain)}`);
    await load();
  }, status));
  const proofs = [];
  if (d.state !== 'verified' && v.dns_txt) {
    proofs.push(h('h4', {}, 'DNS: a TXT record'), proofRow('Name', v.dns_txt.name), proofRow('Value', v.dns_txt.value));
  }
  if (d.state !== 'verified' && v.https_file) {
    proofs.push(h('h4', {}, 'or HTTPS: a file'), proofRow('At', v.https_file.url), proofRow('Containing', v.https_file.content));
  }
  return h('article', { class: `domain-card state-${d.state}`, dataset: { domain: d.domain } },
    h('div', { class: 'domain-head' }, h('strong', {}, d.display_name || d.domain),
      d.include_subdomains ? h('span', { class: 'muted small' }, ' and subdomains') : null, ' ', badge(d.state),
      h('span', { class: 'domain-actions' }, check, remove)),
    h('p', { class: 'small' }, STATE_TEXT[d.state] || d.state,
      d.verified_at ? ` · verified ${fmtDate(d.verified_at)}` : '',
      d.last_checked_at ? ` · last checked ${fmtDate(d.last_checked_at)}` : ''),
    d.failure ? h('p', { class: 'error small' }, d.failure.message || d.failure.reason) : null,
    proofs.length ? h('div', { class: 'proofs' }, ...proofs) : null,
    status);
}

async function load() {
  const shop = await api('GET', `/api/v1/shops/${ID}`);
  document.getElementById('shop-title').textContent = shop.name;
  document.title = `${shop.name} · shoplink`;
  if (!editForm.dataset.filled) {
    editForm.name.value = shop.name;
    editForm.fallback_url.value = shop.fallback_url || '';
    editForm.dataset.filled = '1';
  }
  domainsBox.replaceChildren(...(shop.domains.length ? shop.domains.map(domainCard)
    : [emptyState('No domain: add the one your product pages are on.')]));
}

editForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const saved = document.getElementById('shop-saved');
  saved.textContent = '';
  busy(document.getElementById('shop-save'), async () => {
    try {
      await api('PATCH', `/api/v1/shops/${ID}`, { name: editForm.name.value.trim(),
        fallback_url: editForm.fallback_url.value.trim() || null });
      saved.textContent = 'Saved.';
      editForm.dataset.filled = '';
      await load();
    } catch (err) { showError(err, editForm, errorBox); }
  });
});

domainForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const box = document.getElementById('domain-error');
  busy(document.getElementById('domain-add'), async () => {
    try {
      await api('POST', `/api/v1/shops/${ID}/domains`, { domain: domainForm.domain.value.trim(),
        include_subdomains: domainForm.include_subdomains.checked });
      domainForm.reset();
      await load();
    } catch (err) { showError(err, domainForm, box); }
  });
});

mountNav().then(load).catch((err) => { errorBox.textContent = err.message; });
