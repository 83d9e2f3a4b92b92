import { api, enc, query } from "../api.ts";
import { field, h, replace, timeCell } from "../dom.ts";
import { PAGE_SIZE, filterBar, pagedList } from "../table.ts";

interface AuditEvent {
  id: string;
  at: string;
  type: string;
  user_id: string | null;
  client_id: string | null;
  family_id: string | null;
  token_id: string | null;
  ip: string | null;
  detail: Record<string, unknown> | null;
}

const TYPES = [
  "login",
  "login_failed",
  "refresh",
  "refresh_replayed",
  "refresh_token_reuse",
  "token_revoked",
  "session_revoked",
  "session_evicted",
  "client_credentials",
];

/** The audit trail, newest first, filtered by type, user, client or session; paged by event id. */
export function auditPage(main: HTMLElement, params: URLSearchParams): void {
  const type = h(
    "select",
    { name: "type" },
    h("option", { value: "" }, "any"),
    TYPES.map((t) => h("option", { value: t, selected: params.get("type") === t }, t)),
  );
  const userId = h("input", {
    name: "user_id",
    value: params.get("user_id") ?? "",
    autocomplete: "off",
    spellcheck: "false",
  });
  const clientId = h("input", {
    name: "client_id",
    value: params.get("client_id") ?? "",
    autocomplete: "off",
    spellcheck: "false",
  });
  const familyId = h("input", {
    name: "family_id",
    value: params.get("family_id") ?? "",
    autocomplete: "off",
    spellcheck: "false",
  });
  const list = pagedList<AuditEvent>({
    caption: "Audit events",
    empty: "No events match.",
    columns: [
      { label: "When", cell: (e) => timeCell(e.at) },
      { label: "Event", cell: (e) => h("span", { class: "mono" }, e.type) },
      {
        label: "User",
        cell: (e) =>
          e.user_id
            ? h("a", { href: `#/sessions?user_id=${enc(e.user_id)}`, class: "mono" }, e.user_id.slice(0, 8))
            : "—",
      },
      { label: "Client", cell: (e) => (e.client_id ? h("span", { class: "mono" }, e.client_id) : "—") },
      {
        label: "Session",
        cell: (e) =>
          e.family_id
            ? h("a", { href: `#/sessions/${enc(e.family_id)}`, class: "mono" }, e.family_id.slice(0, 8))
            : "—",
      },
      { label: "Address", cell: (e) => e.ip ?? "—" },
      { label: "Detail", cell: (e) => (e.detail ? h("code", null, JSON.stringify(e.detail)) : "—") },
    ],
    load: async (cursor) => {
      const rows = await api<AuditEvent[]>(
        "GET",
        `/admin/audit${query({
          type: type.value,
          user_id: userId.value.trim(),
          client_id: clientId.value.trim(),
          family_id: familyId.value.trim(),
          before: cursor,
          limit: PAGE_SIZE,
        })}`,
      );
      return { rows, next: rows.length === PAGE_SIZE ? String(rows.at(-1)!.id) : null };
    },
  });
  replace(
    main,
    h("h1", null, "Audit log"),
    filterBar(
      "Filter audit events",
      [
        field("Event", type),
        field("User id", userId),
        field("Client", clientId),
        field("Session id", familyId),
      ],
      () => list.reload(),
    ),
    list.element,
  );
}
