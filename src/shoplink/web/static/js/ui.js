// Small pieces the business pages share: dates, money, state badges, empty states, copy, busy buttons.
import { h } from './api.js';

export function fmtDate(iso) {
  if (!iso) return '—';
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function fmtDay(iso) {
  return iso ? new Date(iso).toLocaleDateString(undefined, { dateStyle: 'medium' }) : '—';
}

/** Minor units to a decimal string ("USD 12.50"); the API also sends the decimal string. */
export function fmtMoney(amount, currency) {
  if (amount == null) return '—';
  return `${currency || ''} ${amount}`.trim();
}

export function badge(state) {
  return h('span', { class: `badge state-${String(state).replace(/[^a-z_]/g, '')}` }, String(state).replace(/_/g, ' '));
}

/** An empty state that says what to do next: text, and optionally a link or a button. */
export function emptyState(text, action) {
  return h('div', { class: 'empty' }, h('p', {}, text), action || null);
}

export function copyButton(text, label = 'Copy') {
  const b = h('button', { type: 'button', class: 'secondary small', 'aria-label': `${label}: ${text}` }, label);
  b.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = 'Copied';
    } catch {
      b.textContent = 'Select and copy';
    }
    setTimeout(() => { b.textContent = label; }, 1500);
  });
  return b;
}

/** Run `fn` with `button` disabled (and marked busy); errors go to `box`. */
export async function busy(button, fn, box) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  if (box) box.textContent = '';
  try {
    return await fn();
  } catch (err) {
    if (box) box.textContent = err.message;
    else throw err;
    return undefined;
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

/** A status line that screen readers hear (role=status on the element). */
export function say(el, text) {
  el.textContent = text;
}

/** Form fields to an object, leaving out empty strings. */
export function formValues(form) {
  const out = {};
  for (const [k, v] of new FormData(form).entries()) {
    if (typeof v === 'string' && v.trim() !== '') out[k] = v.trim();
  }
  return out;
}

/** A table in a box that scrolls sideways on narrow screens; focusable, so the keyboard can scroll it. */
export function scrollBox(table, label) {
  const name = label || (table.caption && table.caption.textContent) || table.getAttribute('aria-label') || 'Table';
  return h('div', { class: 'table-scroll', tabindex: '0', role: 'region', 'aria-label': name }, table);
}
