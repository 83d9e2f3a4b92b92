import { api, enc, query } from "../api.ts";
import { confirmAction, formDialog } from "../dialogs.ts";
import { field, h, pill, replace, timeCell } from "../dom.ts";
import { navigate } from "../router.ts";
import { type Page, PAGE_SIZE, dataTable, errorText, filterBar, pagedList } from "../table.ts";

interface Provider {
  name: string;
  token_url: string;
  client_id: string | null;
  has_client_secret: boolean;
  auth_style: string;
  body_format: string;
  refresh_ahead: number;
  max_concurrency: number | null;
}

interface Connection {
  id: string;
  provider: string;
  status: string;
  reason: string | null;
  expires_at: string;
  next_refresh_at: string;
  generation: number;
  failure_count: number;
  last_error: string | null;
  last_refreshed_at: string | null;
}

interface ConnectionEvent {
  id: number;
  type: string;
  generation: number;
  upstream_status: number | null;
  duration_ms: number | null;
  error: string | null;
  at: string;
}

interface Webhook {
  id: string;
  url: string;
  events: string[];
  created_at: string;
}

interface Delivery {
  id: number;
  event_type: string;
  status: string;
  attempts: number;
  next_attempt_at: string;
  last_status: number | null;
  last_error: string | null;
  created_at: string;
  delivered_at: string | null;
}

const TONE: Record<string, "ok" | "warn" | "bad" | "muted"> = {
  active: "ok",
  refreshing: "warn",
  degraded: "warn",
  needs_reauth: "bad",
  error: "bad",
  delivered: "ok",
  pending: "warn",
  failed: "bad",
};

/** Pages a list the API returns whole (providers and webhooks are few) so the page stays short. */
function pageOf<T>(rows: T[], cursor: string | null): Page<T> {
  const offset = Number(cursor ?? 0);
  return {
    rows: rows.slice(offset, offset + PAGE_SIZE),
    next: offset + PAGE_SIZE < rows.length ? String(offset + PAGE_SIZE) : null,
  };
}

/** Upstream providers the broker refreshes against. */
export function providersPage(main: HTMLElement): void {
  const search = h("input", { type: "search", name: "q", placeholder: "part of a name or token URL" });
  const status = h("p", { role: "status", class: "notice" });
  const list = pagedList<Provider>({
    caption: "Providers",
    empty: "No providers. Add them with `evergreen providers add` or POST /admin/providers.",
    columns: [
      {
        label: "Name",
        cell: (p) => h("a", { href: `#/connections?provider=${enc(p.name)}`, class: "mono" }, p.name),
      },
      { label: "Token URL", cell: (p) => h("span", { class: "mono" }, p.token_url) },
      {
        label: "Client",
        cell: (p) => [p.client_id ?? "—", p.has_client_secret ? pill("secret stored") : null],
      },
      { label: "Request", cell: (p) => `${p.auth_style} auth, ${p.body_format} body` },
      { label: "Refresh ahead", cell: (p) => `${p.refresh_ahead} s` },
      {
        label: "Actions",
        cell: (p) =>
          h(
            "button",
            {
              type: "button",
              class: "danger",
              onclick: async () => {
                if (
                  !(await confirmAction(
                    `Delete provider ${p.name}?`,
                    "It can only be deleted when no connection uses it.",
                    "Delete provider",
                  ))
                )
                  return;
                try {
                  await api("DELETE", `/admin/providers/${enc(p.name)}`);
                  status.textContent = `Provider ${p.name} deleted.`;
                  list.reload();
                } catch (err) {
                  status.textContent = errorText(err);
                }
              },
            },
            "Delete",
          ),
      },
    ],
    load: async (cursor) => {
      const q = search.value.trim().toLowerCase();
      const all = await api<Provider[]>("GET", "/admin/providers");
      return pageOf(
        q
          ? all.filter((p) => p.name.toLowerCase().includes(q) || p.token_url.toLowerCase().includes(q))
          : all,
        cursor,
      );
    },
  });
  replace(
    main,
    h("h1", null, "Providers"),
    status,
    filterBar("Search providers", [field("Search", search)], () => list.reload()),
    list.element,
  );
}

/** Broker connections: status, next refresh, last error, attempts; filtered and paged by cursor. */
export function connectionsPage(main: HTMLElement, params: URLSearchParams): void {
  const provider = h("input", { name: "provider", value: params.get("provider") ?? "", autocomplete: "off" });
  const statusSel = h(
    "select",
    { name: "status" },
    ["", "active", "refreshing", "degraded", "needs_reauth", "error"].map((s) =>
      h("option", { value: s, selected: params.get("status") === s }, s || "any"),
    ),
  );
  const list = pagedList<Connection>({
    caption: "Connections",
    empty: "No connections match.",
    columns: [
      {
        label: "Connection",
        cell: (c) =>
          h(
            "a",
            { href: `#/connections/${enc(c.id)}`, class: "mono", "aria-label": `Connection ${c.id}` },
            c.id.slice(0, 8),
          ),
      },
      { label: "Provider", cell: (c) => c.provider },
      { label: "Status", cell: (c) => pill(c.status, TONE[c.status] ?? "muted") },
      { label: "Expires", cell: (c) => timeCell(c.expires_at) },
      { label: "Next refresh", cell: (c) => timeCell(c.next_refresh_at) },
      { label: "Failed attempts", cell: (c) => String(c.failure_count) },
      { label: "Last error", cell: (c) => c.last_error ?? "—" },
    ],
    load: async (cursor) => {
      const r = await api<{ connections: Connection[]; next_cursor: string | null }>(
        "GET",
        `/admin/connections${query({ provider: provider.value.trim(), status: statusSel.value, cursor, limit: PAGE_SIZE })}`,
      );
      return { rows: r.connections, next: r.next_cursor };
    },
  });
  replace(
    main,
    h("h1", null, "Connections"),
    filterBar("Filter connections", [field("Provider", provider), field("Status", statusSel)], () =>
      list.reload(),
    ),
    list.element,
  );
}

/** One connection: its state, its refresh history, and refresh now / re-authorise / delete. */
export async function connectionPage(main: HTMLElement, id: string): Promise<void> {
  const status = h("p", { role: "status", class: "notice" });
  const facts = h("div");
  const events = h("div");
  const load = async () => {
    try {
      const c = await api<Connection>("GET", `/admin/connections/${enc(id)}`);
      replace(
        facts,
        h(
          "dl",
          { class: "facts" },
          h("dt", null, "Provider"),
          h("dd", null, c.provider),
          h("dt", null, "Status"),
          h("dd", null, pill(c.status, TONE[c.status] ?? "muted"), c.reason ? ` ${c.reason}` : ""),
          h("dt", null, "Access token expires"),
          h("dd", null, timeCell(c.expires_at)),
          h("dt", null, "Next refresh"),
          h("dd", null, timeCell(c.next_refresh_at)),
          h("dt", null, "Last refreshed"),
          h("dd", null, timeCell(c.last_refreshed_at)),
          h("dt", null, "Generation"),
          h("dd", null, String(c.generation)),
          h("dt", null, "Failed attempts"),
          h("dd", null, String(c.failure_count)),
          h("dt", null, "Last error"),
          h("dd", null, c.last_error ?? "—"),
        ),
      );
      const ev = await api<ConnectionEvent[]>(
        "GET",
        `/admin/connections/${enc(id)}/events${query({ limit: 50 })}`,
      );
      replace(
        events,
        dataTable(
          "Refresh history",
          [
            { label: "When", cell: (e: ConnectionEvent) => timeCell(e.at) },
            { label: "Event", cell: (e: ConnectionEvent) => h("span", { class: "mono" }, e.type) },
            { label: "Generation", cell: (e: ConnectionEvent) => String(e.generation) },
            {
              label: "Upstream",
              cell: (e: ConnectionEvent) => (e.upstream_status === null ? "—" : String(e.upstream_status)),
            },
            {
              label: "Took",
              cell: (e: ConnectionEvent) => (e.duration_ms === null ? "—" : `${e.duration_ms} ms`),
            },
            { label: "Error", cell: (e: ConnectionEvent) => e.error ?? "—" },
          ],
          ev,
          "No refreshes yet.",
        ),
      );
    } catch (err) {
      status.textContent = errorText(err);
    }
  };
  const run = async (work: () => Promise<string>) => {
    try {
      status.textContent = await work();
      await load();
    } catch (err) {
      status.textContent = errorText(err);
    }
  };
  replace(
    main,
    h("p", null, h("a", { href: "#/connections" }, "← Connections")),
    h("h1", null, "Connection ", h("span", { class: "mono" }, id.slice(0, 8))),
    h("p", { class: "muted mono" }, id),
    status,
    facts,
    h(
      "div",
      { class: "actions" },
      h(
        "button",
        {
          type: "button",
          onclick: () =>
            run(
              async () =>
                `Refresh: ${(await api<{ outcome: string }>("POST", `/admin/connections/${enc(id)}/refresh`)).outcome}.`,
            ),
        },
        "Refresh now",
      ),
      h(
        "button",
        {
          type: "button",
          onclick: async () => {
            const v = await formDialog(
              "Re-authorise the connection",
              [
                { name: "access_token", label: "Access token", type: "password", required: true },
                { name: "refresh_token", label: "Refresh token", type: "password", required: true },
                { name: "expires_in", label: "Expires in (seconds, optional)", type: "number" },
              ],
              "Store tokens",
              "Paste the tokens from the user's new authorisation. They are sealed at rest and never shown again.",
            );
            if (!v) return;
            const body: Record<string, unknown> = {
              access_token: v.access_token,
              refresh_token: v.refresh_token,
            };
            if (v.expires_in) body.expires_in = Number(v.expires_in);
            await run(async () => {
              await api("POST", `/admin/connections/${enc(id)}/reauth`, body);
              return "Re-authorised.";
            });
          },
        },
        "Re-authorise",
      ),
      h(
        "button",
        {
          type: "button",
          class: "danger",
          onclick: async () => {
            if (
              !(await confirmAction(
                "Delete this connection?",
                "Its tokens are deleted; consumers get 404 for it.",
                "Delete connection",
              ))
            )
              return;
            try {
              await api("DELETE", `/admin/connections/${enc(id)}`);
              navigate("#/connections");
            } catch (err) {
              status.textContent = errorText(err);
            }
          },
        },
        "Delete",
      ),
    ),
    h("h2", null, "Refresh history"),
    events,
  );
  await load();
}

/** Webhooks and, for one, its recent deliveries. */
export function webhooksPage(main: HTMLElement): void {
  const list = pagedList<Webhook>({
    caption: "Webhooks",
    empty: "No webhooks.",
    columns: [
      { label: "URL", cell: (w) => h("a", { href: `#/webhooks/${enc(w.id)}`, class: "mono" }, w.url) },
      { label: "Events", cell: (w) => w.events.join(", ") || "all" },
      { label: "Created", cell: (w) => timeCell(w.created_at) },
    ],
    load: async (cursor) => pageOf(await api<Webhook[]>("GET", "/admin/webhooks"), cursor),
  });
  replace(main, h("h1", null, "Webhooks"), list.element);
}

export async function webhookPage(main: HTMLElement, id: string): Promise<void> {
  const status = h("p", { class: "error", role: "alert" });
  const limitSel = h(
    "select",
    { name: "limit" },
    ["25", "100", "500"].map((n) => h("option", { value: n }, n)),
  );
  const body = h("div");
  const load = async () => {
    try {
      const rows = await api<Delivery[]>(
        "GET",
        `/admin/webhooks/${enc(id)}/deliveries${query({ limit: limitSel.value })}`,
      );
      replace(
        body,
        dataTable(
          "Deliveries",
          [
            { label: "Created", cell: (d: Delivery) => timeCell(d.created_at) },
            { label: "Event", cell: (d: Delivery) => h("span", { class: "mono" }, d.event_type) },
            { label: "Status", cell: (d: Delivery) => pill(d.status, TONE[d.status] ?? "muted") },
            { label: "Attempts", cell: (d: Delivery) => String(d.attempts) },
            {
              label: "Last answer",
              cell: (d: Delivery) => (d.last_status === null ? "—" : String(d.last_status)),
            },
            { label: "Last error", cell: (d: Delivery) => d.last_error ?? "—" },
            {
              label: "Next attempt",
              cell: (d: Delivery) => (d.status === "pending" ? timeCell(d.next_attempt_at) : "—"),
            },
          ],
          rows,
          "No deliveries yet.",
        ),
      );
    } catch (err) {
      status.textContent = errorText(err);
    }
  };
  replace(
    main,
    h("p", null, h("a", { href: "#/webhooks" }, "← Webhooks")),
    h("h1", null, "Webhook deliveries"),
    status,
    filterBar("Deliveries shown", [field("Latest", limitSel)], () => void load()),
    body,
    h(
      "div",
      { class: "actions" },
      h(
        "button",
        {
          type: "button",
          class: "danger",
          onclick: async () => {
            if (
              !(await confirmAction(
                "Delete this webhook?",
                "No more events are sent to it.",
                "Delete webhook",
              ))
            )
              return;
            try {
              await api("DELETE", `/admin/webhooks/${enc(id)}`);
              navigate("#/webhooks");
            } catch (err) {
              status.textContent = errorText(err);
            }
          },
        },
        "Delete webhook",
      ),
    ),
  );
  await load();
}
