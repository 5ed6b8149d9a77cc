// Product search shared by the studio and the live console: the caller's own products and the
// products of the promotion plans they joined.
import { api } from './api.js';

let planProducts = null;

async function fromPlans() {
  if (planProducts === null) {
    try {
      const mine = await api('GET', '/api/v1/me/plans');
      planProducts = mine.items.flatMap((e) => (e.plan.products || []).map((p) => ({
        id: p.product_id, title: p.title, plan: e.plan.name, plan_id: e.plan.id })));
    } catch { planProducts = []; }  // not a creator, or no affiliate program here
  }
  return planProducts;
}

export async function searchProducts(q) {
  const own = api('GET', `/api/v1/products?status=active&limit=20${q ? `&q=${encodeURIComponent(q)}` : ''}`)
    .then((r) => r.items).catch(() => []);
  const needle = q.toLowerCase();
  const [mine, planned] = await Promise.all([own, fromPlans()]);
  const seen = new Set(mine.map((p) => p.id));
  return [...mine, ...planned.filter((p) => !seen.has(p.id) && p.title.toLowerCase().includes(needle))];
}
