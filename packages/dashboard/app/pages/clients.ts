import { api, enc, query } from "../api.ts";
import { confirmAction, showSecretOnce } from "../dialogs.ts";
import { type Child, duration, field, h, pill, replace, timeCell } from "../dom.ts";
import { navigate } from "../router.ts";
import { errorText, filterBar, offsetPage, pagedList } from "../table.ts";

export interface Client {
  client_id: string;
  client_name: string | null;
  token_endpoint_auth_method: "none" | "client_secret_basic" | "client_secret_post";
  grant_types: string[];
  redirect_uris: string[];
  scope: string;
  access_token_ttl: number;
  refresh_token_idle_ttl: number;
  refresh_token_absolute_ttl: number;
  rotate_refresh_tokens: boolean;
  refresh_token_reuse_grace: number;
  max_sessions_per_user: number;
  skip_consent: boolean;
  refresh_token_policy: "always" | "offline_access" | "never";
  created_at: string;
  client_secret?: string;
}

const DEVICE = "urn:ietf:params:oauth:grant-type:device_code";
const GRANTS: [string, string][] = [
  ["authorization_code", "Authorization code + PKCE: sign-in in a browser (web, mobile, desktop apps)."],
  ["refresh_token", "Refresh token: stay signed in after the access token expires."],
  ["password", "Password: the app collects the password itself (first-party apps only)."],
  ["client_credentials", "Client credentials: a backend acting as itself (needs a secret)."],
  [DEVICE, "Device code: TVs and CLIs without a browser (RFC 8628)."],
];

/** Clients: search and page; each opens its form. */
export function clientsPage(main: HTMLElement): void {
  const search = h("input", { type: "search", name: "q", placeholder: "part of a client id or name" });
  const list = pagedList<Client>({
    caption: "Clients",
    empty: "No clients match.",
    columns: [
      {
        label: "Client",
        cell: (c) => h("a", { href: `#/clients/${enc(c.client_id)}`, class: "mono" }, c.client_id),
      },
      { label: "Name", cell: (c) => c.client_name ?? "—" },
      {
        label: "Type",
        cell: (c) =>
          c.token_endpoint_auth_method === "none" ? pill("public") : pill("confidential", "warn"),
      },
      {
        label: "Grants",
        cell: (c) => c.grant_types.map((g) => (g === DEVICE ? "device_code" : g)).join(", "),
      },
      { label: "Access token", cell: (c) => duration(c.access_token_ttl) },
      {
        label: "Refresh tokens",
        cell: (c) =>
          `${c.rotate_refresh_tokens ? "rotate" : "slide"}, idle ${duration(c.refresh_token_idle_ttl)}, max ${duration(c.refresh_token_absolute_ttl)}`,
      },
      { label: "Created", cell: (c) => timeCell(c.created_at) },
    ],
    load: (cursor) =>
      offsetPage(cursor, (offset, limit) =>
        api<Client[]>("GET", `/admin/clients${query({ q: search.value.trim(), offset, limit })}`),
      ),
  });
  replace(
    main,
    h("h1", null, "Clients"),
    h("p", null, h("a", { href: "#/clients/new", class: "button primary" }, "New client")),
    filterBar("Search clients", [field("Search", search)], () => list.reload()),
    list.element,
  );
}

function seconds(name: string, value: number, min: number, max: number): HTMLInputElement {
  return h("input", { name, type: "number", min, max, step: 1, required: true, value, inputmode: "numeric" });
}

/** Create (id "new") or edit one client; every lifetime and rotation setting is explained beside it. */
export async function clientPage(main: HTMLElement, id: string): Promise<void> {
  const creating = id === "new";
  const status = h("p", { role: "status", class: "notice" });
  let c: Client;
  try {
    c = creating
      ? {
          client_id: "",
          client_name: "",
          token_endpoint_auth_method: "none",
          grant_types: ["authorization_code", "refresh_token"],
          redirect_uris: [],
          scope: "openid offline_access",
          access_token_ttl: 600,
          refresh_token_idle_ttl: 14 * 86400,
          refresh_token_absolute_ttl: 90 * 86400,
          rotate_refresh_tokens: true,
          refresh_token_reuse_grace: 15,
          max_sessions_per_user: 50,
          skip_consent: false,
          refresh_token_policy: "always",
          created_at: "",
        }
      : await api<Client>("GET", `/admin/clients/${enc(id)}`);
  } catch (err) {
    replace(main, h("h1", null, "Client"), h("p", { class: "error", role: "alert" }, errorText(err)));
    return;
  }

  const clientId = h("input", {
    name: "client_id",
    value: c.client_id,
    pattern: "[A-Za-z0-9._~\\-]{1,128}",
    autocomplete: "off",
  });
  const name = h("input", { name: "client_name", value: c.client_name ?? "", autocomplete: "off" });
  const method = h(
    "select",
    { name: "token_endpoint_auth_method" },
    [
      ["none", "Public: no secret (browser, mobile, desktop, CLI apps; PKCE protects the code)"],
      ["client_secret_basic", "Confidential: secret in HTTP Basic auth"],
      ["client_secret_post", "Confidential: secret in the form body"],
    ].map(([v, label]) => h("option", { value: v!, selected: c.token_endpoint_auth_method === v }, label!)),
  );
  const grants = GRANTS.map(([g]) =>
    h("input", { type: "checkbox", name: "grant_types", value: g, checked: c.grant_types.includes(g) }),
  );
  const redirects = h(
    "textarea",
    { name: "redirect_uris", rows: 3, spellcheck: "false" },
    c.redirect_uris.join("\n"),
  );
  const scope = h("input", { name: "scope", value: c.scope, autocomplete: "off", spellcheck: "false" });
  const accessTtl = seconds("access_token_ttl", c.access_token_ttl, 1, 86400);
  const idleTtl = seconds("refresh_token_idle_ttl", c.refresh_token_idle_ttl, 1, 315360000);
  const absoluteTtl = seconds("refresh_token_absolute_ttl", c.refresh_token_absolute_ttl, 1, 315360000);
  const rotate = h("input", {
    type: "checkbox",
    name: "rotate_refresh_tokens",
    checked: c.rotate_refresh_tokens,
  });
  const grace = seconds("refresh_token_reuse_grace", c.refresh_token_reuse_grace, 0, 300);
  const cap = seconds("max_sessions_per_user", c.max_sessions_per_user, 1, 10000);
  const policy = h(
    "select",
    { name: "refresh_token_policy" },
    [
      ["always", "always: every login gets a refresh token"],
      ["offline_access", "offline_access: only when that scope is asked for and granted"],
      ["never", "never: access tokens only"],
    ].map(([v, label]) => h("option", { value: v!, selected: c.refresh_token_policy === v }, label!)),
  );
  const skipConsent = h("input", { type: "checkbox", name: "skip_consent", checked: c.skip_consent });

  const check = (input: HTMLInputElement, label: string, help: Child) => {
    input.id ||= `chk-${input.name}-${input.value || "on"}`.replace(/[^A-Za-z0-9_-]/g, "-");
    return h(
      "div",
      { class: "field check" },
      h("label", { for: input.id }, input, ` ${label}`),
      h("p", { class: "help" }, help),
    );
  };

  const save = async (e: Event) => {
    e.preventDefault();
    const body: Record<string, unknown> = {
      client_name: name.value.trim() || null,
      token_endpoint_auth_method: method.value,
      grant_types: grants.filter((g) => g.checked).map((g) => g.value),
      redirect_uris: redirects.value.split(/\s+/).filter(Boolean),
      scope: scope.value.trim(),
      access_token_ttl: Number(accessTtl.value),
      refresh_token_idle_ttl: Number(idleTtl.value),
      refresh_token_absolute_ttl: Number(absoluteTtl.value),
      rotate_refresh_tokens: rotate.checked,
      refresh_token_reuse_grace: Number(grace.value),
      max_sessions_per_user: Number(cap.value),
      refresh_token_policy: policy.value,
      skip_consent: skipConsent.checked,
    };
    if (creating && clientId.value.trim()) body.client_id = clientId.value.trim();
    try {
      const saved = await api<Client>(
        creating ? "POST" : "PATCH",
        creating ? "/admin/clients" : `/admin/clients/${enc(c.client_id)}`,
        body,
      );
      if (saved.client_secret)
        await showSecretOnce(`Secret of ${saved.client_id}`, "Client secret", saved.client_secret);
      if (creating) navigate(`#/clients/${enc(saved.client_id)}`);
      else status.textContent = "Saved.";
    } catch (err) {
      status.textContent = errorText(err);
    }
  };

  const existing = creating
    ? null
    : h(
        "div",
        { class: "card" },
        h("h2", null, "Secret and removal"),
        h(
          "p",
          null,
          h("a", { href: `#/sessions?client_id=${enc(c.client_id)}` }, "Sessions of this client"),
          " · ",
          h("a", { href: `#/audit?client_id=${enc(c.client_id)}` }, "Its audit events"),
        ),
        h(
          "div",
          { class: "actions" },
          c.token_endpoint_auth_method === "none"
            ? null
            : h(
                "button",
                {
                  type: "button",
                  onclick: async () => {
                    if (
                      !(await confirmAction(
                        "Rotate the client secret?",
                        "The current secret stops working at once; the app needs the new one.",
                        "Rotate secret",
                      ))
                    )
                      return;
                    try {
                      const r = await api<Client>("PATCH", `/admin/clients/${enc(c.client_id)}`, {
                        rotate_secret: true,
                      });
                      if (r.client_secret)
                        await showSecretOnce(
                          `New secret of ${c.client_id}`,
                          "Client secret",
                          r.client_secret,
                        );
                    } catch (err) {
                      status.textContent = errorText(err);
                    }
                  },
                },
                "Rotate secret",
              ),
          h(
            "button",
            {
              type: "button",
              class: "danger",
              onclick: async () => {
                if (
                  !(await confirmAction(
                    `Delete ${c.client_id}?`,
                    "The client and every session issued to it are deleted.",
                    "Delete client",
                  ))
                )
                  return;
                try {
                  await api("DELETE", `/admin/clients/${enc(c.client_id)}`);
                  navigate("#/clients");
                } catch (err) {
                  status.textContent = errorText(err);
                }
              },
            },
            "Delete client",
          ),
        ),
      );

  replace(
    main,
    h("p", null, h("a", { href: "#/clients" }, "← Clients")),
    h("h1", null, creating ? "New client" : h("span", { class: "mono" }, c.client_id)),
    status,
    h(
      "form",
      { class: "card client-form", onsubmit: save },
      h(
        "fieldset",
        null,
        h("legend", null, "Identity"),
        creating
          ? field(
              "Client id",
              clientId,
              "Letters, digits and . _ ~ -; leave empty to generate one. It cannot change later.",
            )
          : null,
        field("Name", name, "Shown to users on the consent page."),
        field(
          "Client type",
          method,
          "Public clients cannot keep a secret; confidential ones get a secret, shown once.",
        ),
      ),
      h(
        "fieldset",
        null,
        h("legend", null, "Grants"),
        GRANTS.map(([g, help], i) => check(grants[i]!, g === DEVICE ? "device_code" : g, help)),
        field(
          "Redirect URIs",
          redirects,
          "One per line; matched exactly. http://127.0.0.1/… matches any port (RFC 8252).",
        ),
        field(
          "Scope",
          scope,
          "Space-separated scopes the client may ask for. openid adds an ID token; offline_access asks for a refresh token.",
        ),
      ),
      h(
        "fieldset",
        null,
        h("legend", null, "Lifetimes (seconds)"),
        field(
          "Access token lifetime",
          accessTtl,
          "How long an access token is accepted (1 s to 1 day). Shorter means a revocation bites sooner; the SDK refreshes ahead of expiry.",
        ),
        field(
          "Refresh idle lifetime",
          idleTtl,
          "A session unused for this long ends. Each refresh starts it again, but never past the absolute lifetime.",
        ),
        field(
          "Refresh absolute lifetime",
          absoluteTtl,
          "Counted from the login: no refresh keeps a session beyond this; users then sign in again.",
        ),
        field(
          "Sessions per user",
          cap,
          "Live sessions one user may have with this client; a new login beyond it ends their oldest.",
        ),
      ),
      h(
        "fieldset",
        null,
        h("legend", null, "Rotation"),
        check(
          rotate,
          "Rotate refresh tokens",
          "Each refresh returns a new refresh token and spends the old one. A spent token presented after the grace window revokes the whole session (reuse detection). Off: one token whose idle expiry slides.",
        ),
        field(
          "Reuse grace window",
          grace,
          "0 to 300 s. A spent token presented within it (two tabs, a lost response) gets the same successor again instead of counting as stolen.",
        ),
        field("Refresh token policy", policy, "When logins get a refresh token at all."),
        check(
          skipConsent,
          "Skip consent (first-party app)",
          "Users are not asked to approve this client. Only for your own apps.",
        ),
      ),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "submit", class: "primary" }, creating ? "Create client" : "Save changes"),
      ),
    ),
    existing,
  );
}
