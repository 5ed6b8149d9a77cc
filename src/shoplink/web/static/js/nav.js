// The header every signed-in page shares: who is signed in, and sign-out (a CSRF-protected POST).
import { h, session } from './api.js';

export async function mountNav() {
  const who = await session();
  const slot = document.getElementById('who');
  if (!slot) return who;
  const out = h('button', { type: 'button', id: 'signout', class: 'link' }, 'Sign out');
  out.addEventListener('click', async () => {
    const r = await fetch('/signout', { method: 'POST', credentials: 'same-origin',
      headers: { 'X-CSRF-Token': who.csrf_token }, redirect: 'manual' });
    if (r.type === 'opaqueredirect' || r.ok || r.status === 303) location.assign('/signin');
  });
  slot.replaceChildren(h('span', { id: 'who-name' }, who.name), ' ', out);
  return who;
}
