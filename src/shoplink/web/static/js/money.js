// Words shared by the money pages (/sales, /payouts, /statement): settlement and attribution
// states as a person reads them, and names of plans and creators the signed-in account can see.
import { api } from './api.js';
import { fmtDay } from './ui.js';

export const SETTLEMENT_STATES = ['pending', 'payable', 'frozen', 'paid'];

const REASONS = {
  last_click: 'the buyer\u2019s last click on a creator\u2019s link',
  pending_attribution: 'waiting for the click to be stored',
  no_qualifying_click: 'no click on a creator\u2019s link led to it',
  click_unknown: 'its click was never seen',
  click_of_another_shop: 'its click was on another shop\u2019s product',
};

export function reasonWords(reason) {
  return REASONS[reason] || String(reason || '').replace(/_/g, ' ');
}

/** Where a sale's commission stands, in one sentence. */
export function settlementWords(c) {
  const s = c.settlement;
  if (c.attribution === 'pending') return `Waiting for its click until ${fmtDay(c.pending_until)}: no commission yet.`;
  if (!s) return `No commission: not credited to a creator (${reasonWords(c.reason)}).`;
  switch (s.state) {
    case 'pending': return `Pending: in the return window until ${fmtDay(s.payable_at)}, then payable.`;
    case 'payable': return 'Payable: included in the next payout to the creator.';
    case 'frozen': return `Frozen since ${fmtDay(s.frozen_at)}: ${s.frozen_reason || 'no reason given'}. Not paid until unfrozen.`;
    case 'paid': return `Paid in payout ${s.payout_id}.`;
    case 'refunded': return 'Refunded wholly: no commission is owed.';
    default: return s.state;
  }
}

/** Plan names (the caller's own plans and those it joined) and creator names (enrolments in its plans). */
export async function loadNames(who) {
  const plans = new Map();
  const creators = new Map();
  const seller = who.roles.some((r) => r === 'seller' || r === 'admin');
  const [mine, own] = await Promise.all([
    who.roles.includes('creator') ? api('GET', '/api/v1/me/plans').catch(() => ({ items: [] })) : { items: [] },
    seller ? api('GET', '/api/v1/plans?limit=200').catch(() => ({ items: [] })) : { items: [] }]);
  for (const e of mine.items) plans.set(e.plan.id, e.plan.name);
  for (const p of own.items) plans.set(p.id, p.name);
  const lists = await Promise.all(own.items.slice(0, 20).map((p) => api('GET', `/api/v1/plans/${p.id}/enrolments`).catch(() => ({ items: [] }))));
  for (const e of lists.flatMap((l) => l.items)) if (e.creator_name) creators.set(e.creator_id, e.creator_name);
  return {
    plan: (id) => (id == null ? '—' : plans.get(id) || `Plan ${id}`),
    creator: (id) => (id == null ? '—' : creators.get(id) || `Creator ${id}`),
  };
}
