// The pages' only way to the JSON API: same-origin cookie session + the session's CSRF token.
// The API token never reaches page JavaScript; the HttpOnly cookie carries the session.

let sessionPromise = null;

export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || 'http_error';
    this.details = err.details;
  }

  /** The field a 422 is about (validation errors name it in details). */
  get field() {
    const d = this.details;
    if (!d) return null;
    if (typeof d.field === 'string') return d.field;
    if (Array.isArray(d) && d[0] && typeof d[0].field === 'string') return d[0].field;
    if (Array.isArray(d.errors) && d.errors[0]) return d.errors[0].field || d.errors[0].path || null;
    return null;
  }
}

export function signInUrl() {
  return `/signin?next=${encodeURIComponent(location.pathname + location.search)}`;
}

/** {account_id, name, roles, csrf_token}; sends the browser to sign-in when the session is gone. */
export function session() {
  if (!sessionPromise) {
    sessionPromise = fetch('/web/session', { credentials: 'same-origin', cache: 'no-store' }).then(async (r) => {
      if (r.status === 401) {
        location.assign(signInUrl());
        throw new ApiError(401, await r.json());
      }
      if (!r.ok) throw new ApiError(r.status, null);
      return r.json();
    });
  }
  return sessionPromise;
}

async function parse(response) {
  if (response.status === 204) return null;
  const type = response.headers.get('Content-Type') || '';
  const body = type.includes('application/json') ? await response.json() : await response.text();
  if (!response.ok) {
    if (response.status === 401) location.assign(signInUrl());
    throw new ApiError(response.status, body);
  }
  return body;
}

/** Call the JSON API with the cookie session; writes carry X-CSRF-Token. */
export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = (await session()).csrf_token;
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  return parse(await fetch(path, init));
}

/** Multipart upload with progress (fetch cannot report upload progress; XMLHttpRequest can). */
export async function upload(path, formData, onProgress) {
  const { csrf_token: csrf } = await session();
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    xhr.withCredentials = true;
    xhr.setRequestHeader('X-CSRF-Token', csrf);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    });
    xhr.addEventListener('load', () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new ApiError(xhr.status, body));
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, { error: { message: 'network error' } })));
    xhr.send(formData);
  });
}

/** Small DOM builder: h('div', {class: 'x', onclick: fn}, child, 'text'). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function fmtTime(seconds) {
  const s = Math.max(0, seconds);
  const m = Math.floor(s / 60);
  return `${m}:${(s - m * 60).toFixed(1).padStart(4, '0')}`;
}

export function fmtPrice(product) {
  if (!product || product.price == null) return '';
  return `${product.currency || ''} ${product.price}`.trim();
}

/** Show an API error next to its field (an element with data-error-for=field) or in a fallback box. */
export function showError(err, form, fallback) {
  for (const el of (form || document).querySelectorAll('[data-error-for]')) el.textContent = '';
  const field = err instanceof ApiError ? err.field : null;
  const slot = field && form ? form.querySelector(`[data-error-for="${CSS.escape(field)}"]`) : null;
  (slot || fallback).textContent = err.message;
}
