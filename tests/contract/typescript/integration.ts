// A small integration typed with the types openapi-typescript generates from the contract
// (tests/contract/test_typescript_types.py compiles it with `tsc --strict`; it is not run).
// The @ts-expect-error lines prove that the types are precise: each must be a type error.
import type { components, paths } from "./shoplink";

type Schemas = components["schemas"];
type Shop = Schemas["Shop"];
type ShopCreate = Schemas["ShopCreate"];
type Product = Schemas["Product"];
type ApiError = Schemas["Error"];
type CreatedShop = paths["/api/v1/shops"]["post"]["responses"][201]["content"]["application/json"];
type ProductPage = paths["/api/v1/products"]["get"]["responses"][200]["content"]["application/json"];
type ListQuery = NonNullable<paths["/api/v1/products"]["get"]["parameters"]["query"]>;
type NotFound = paths["/api/v1/products/{product_id}"]["get"]["responses"][404]["content"]["application/json"];
type Stats = paths["/api/v1/stats/videos/{entity_id}"]["get"]["responses"][200]["content"]["application/json"];
type StatsCsv = paths["/api/v1/stats/videos/{entity_id}.csv"]["get"]["responses"][200]["content"]["text/csv"];

class ShoplinkError extends Error {
  constructor(readonly status: number, readonly body: ApiError) {
    super(`${status} ${body.error.code}: ${body.error.message}`);
  }
}

async function call<T>(base: string, token: string, method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new ShoplinkError(response.status, (await response.json()) as ApiError);
  return (await response.json()) as T;
}

export async function createShop(base: string, token: string, body: ShopCreate): Promise<CreatedShop> {
  return call<CreatedShop>(base, token, "POST", "/api/v1/shops", body);
}

export async function allProducts(base: string, token: string, query: ListQuery): Promise<Product[]> {
  const items: Product[] = [];
  let after: number | null = query.after ?? 0;
  while (after !== null) {
    const params = new URLSearchParams({ limit: String(query.limit ?? 50), after: String(after) });
    if (query.status !== undefined) params.set("status", query.status);
    const page: ProductPage = await call<ProductPage>(base, token, "GET", `/api/v1/products?${params}`);
    items.push(...page.items);
    after = page.next_after;
  }
  return items;
}

export function pendingDomains(shop: Shop): string[] {
  return shop.domains.filter((d) => d.state === "pending").map((d) => d.verification.dns_txt.name);
}

export function humanShare(stats: Stats): number {
  const human: number = stats.totals.by_class.human;
  return stats.totals.clicks === 0 ? 0 : human / stats.totals.clicks;
}

export const csvLines = (csv: StatsCsv): string[] => csv.split("\r\n");
export const errorCode = (e: NotFound): string => e.error.code;

// Request bodies as a client writes them: no `$defs`, nested types named.
export const shopBody: ShopCreate = { name: "Acme", domains: ["acme.example", { domain: "b.example", include_subdomains: true }] };
export const anchorBody: Schemas["AnchorCreate"] = { product_id: 1, start_s: 0.5, end_s: 3, position: { x: 0.1, y: 0.2 } };
export const productBody: Schemas["ProductCreate"] = { title: "Trail shoe", url: "https://acme.example/p", price: "89.00", currency: "USD" };
export const planBody: Schemas["PlanCreate"] = { name: "Spring", kind: "open", rate: "10.00", products: [{ product_id: 1 }] };

// @ts-expect-error a required property is missing (`name`)
export const noName: ShopCreate = { domains: ["x.example"] };
// @ts-expect-error a property the body does not have
export const extra: ShopCreate = { name: "A", domains: ["a.example"], colour: "red" };
// @ts-expect-error not one of the currencies the service knows
export const badCurrency: Schemas["ProductCreate"] = { title: "T", url: "https://a.example/p", currency: "XYZ" };
// @ts-expect-error a product's status is an enum
export const badStatus: Product["status"] = "sold";
// @ts-expect-error ids are numbers
export const badId: Shop["id"] = "7";
// @ts-expect-error a page's next_after may be null: not assignable to number
export const next: number = ({} as ProductPage).next_after;
