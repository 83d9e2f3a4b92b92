/**
 * The todo web app: signs in with the password grant of a first-party public client, keeps the
 * session in IndexedDB (so every tab shares it: one refresh under a Web Lock, announced on a
 * BroadcastChannel), and calls the todo API with `session.fetch`. The activity log shows what
 * the SDK does with the tokens — never a token itself, only a short hash of it.
 */
import {
  createSession,
  type FetchLike,
  indexedDBStorage,
  jsonProfile,
  type Session,
  SessionExpiredError,
} from "@evergreen/client";

interface WebConfig {
  issuer: string;
  clientId: string;
  legacyClientId: string;
  mode: Mode;
  refreshLeeway: number;
}
type Mode = "standard" | "legacy";

const config = JSON.parse(document.getElementById("config")?.textContent ?? "{}") as WebConfig;
const origin = location.origin;
const MODE_KEY = "todo-demo:mode";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Record<string, string | boolean> = {},
): HTMLElementTagNameMap[K] {
  return Object.assign(document.createElement(tag), props);
}

// ---- the activity log -------------------------------------------------------------------------

type Kind = "signin" | "refresh" | "replay" | "other-tab" | "lost" | "error" | "api" | "signout";

function log(kind: Kind, message: string, limits?: string): void {
  const item = el("li");
  item.dataset.kind = kind;
  item.append(
    el("time", { textContent: new Date().toLocaleTimeString() }),
    el("span", { className: "kind", textContent: kind }),
    document.createTextNode(message),
  );
  if (limits) item.append(el("span", { className: "limits", textContent: limits }));
  $("activity").prepend(item);
}

/** A short, stable name for a token: the first 8 hex digits of its SHA-256. */
async function tokenId(token: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token));
  return `#${[...new Uint8Array(digest).slice(0, 4)].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** The issuer's RateLimit-* headers (draft-ietf-httpapi-ratelimit-headers), as one line. */
function rateLimits(response: Response): string | undefined {
  const limit = response.headers.get("ratelimit-limit");
  if (limit === null) return undefined;
  const remaining = response.headers.get("ratelimit-remaining");
  const reset = response.headers.get("ratelimit-reset");
  const retry = response.headers.get("retry-after");
  return `RateLimit-Limit ${limit} · RateLimit-Remaining ${remaining} · RateLimit-Reset ${reset} s${retry ? ` · Retry-After ${retry} s` : ""}`;
}

// ---- observing the SDK's requests -------------------------------------------------------------

/** Refresh tokens this tab presented, and the successor each got: a second answer is a replay. */
const answered = new Map<string, string>();
let loseNextRefresh = false;

function urlOf(input: RequestInfo | URL): string {
  return typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
}

/** The grant a token-endpoint request makes, and the refresh token it presents. */
function grantOf(
  url: string,
  init: RequestInit | undefined,
): { grant: string; presented?: string } | undefined {
  if (url === `${origin}/refresh/`) {
    const body = JSON.parse(String(init?.body ?? "{}")) as { refresh?: string };
    return { grant: "refresh_token", presented: body.refresh };
  }
  if (url === `${origin}/token/`) return { grant: "password" };
  if (!url.startsWith(config.issuer) || !url.endsWith("/token")) return undefined;
  const form = new URLSearchParams(
    init?.body instanceof URLSearchParams ? init.body : String(init?.body ?? ""),
  );
  return { grant: form.get("grant_type") ?? "", presented: form.get("refresh_token") ?? undefined };
}

/**
 * The `fetch` the SDK uses: the real one, plus a line in the activity log for every sign-in
 * and refresh (with the rate-limit headers the issuer sent), and the "lose the next refresh
 * response" switch, which drops an answer the issuer did send — as a flaky mobile network does.
 */
const observedFetch: FetchLike = async (input, init) => {
  const url = urlOf(input);
  const grant = grantOf(url, init);
  const response = await fetch(input, init);
  if (!grant) {
    if (response.status === 401 && url.startsWith(`${origin}/api/`))
      log("api", `401 from ${new URL(url).pathname}`);
    return response;
  }
  const limits = rateLimits(response);
  if (grant.grant !== "refresh_token" || !grant.presented) {
    log(
      response.ok ? "signin" : "error",
      response.ok ? "signed in" : `sign-in refused (${response.status})`,
      limits,
    );
    return response;
  }
  const presented = await tokenId(grant.presented);
  if (!response.ok) {
    log("error", `refresh with ${presented} refused (${response.status})`, limits);
    return response;
  }
  const body = (await response
    .clone()
    .json()
    .catch(() => ({}))) as Record<string, unknown>;
  const next = typeof body.refresh_token === "string" ? await tokenId(body.refresh_token) : undefined;
  const earlier = answered.get(presented);
  if (!next) {
    log(
      "refresh",
      `refreshed at ${new URL(url).pathname}: new access token; no refresh token came back, so ${presented} is kept`,
      limits,
    );
  } else if (earlier !== undefined) {
    log(
      "replay",
      `grace replay: ${presented} was already used; the issuer answered with the same successor ${next}${earlier === next ? "" : " (differs!)"}`,
      limits,
    );
  } else {
    log("refresh", `refreshed: ${presented} → ${next} (rotated; ${presented} is spent)`, limits);
  }
  if (next) answered.set(presented, next);
  if (loseNextRefresh) {
    loseNextRefresh = false;
    ($("lose-response") as HTMLInputElement).checked = false;
    log("lost", `dropped the issuer's answer on purpose; the SDK retries with ${presented}`);
    throw new TypeError("the refresh response was lost (simulated)");
  }
  return response;
};

// ---- the session --------------------------------------------------------------------------------

/** The access token this tab knows it is using: a rotation is reported once, when it is new here. */
let knownToken: string | undefined;
let pickups = Promise.resolve();

let unsubscribe: (() => void)[] = [];
let mode: Mode = (localStorage.getItem(MODE_KEY) as Mode | null) ?? config.mode;
let session: Session = open(mode);

function open(which: Mode): Session {
  const common = {
    // IndexedDB, not localStorage: Chromium propagates localStorage writes to other tabs
    // asynchronously, so a tab that gets the Web Lock right after another tab's refresh can
    // still read the old tokens and refresh again. An IndexedDB transaction sees every write
    // committed before it began.
    storage: indexedDBStorage({ database: "evergreen-todo" }),
    origins: [origin],
    refreshLeeway: config.refreshLeeway,
    fetch: observedFetch,
  };
  const created =
    which === "standard"
      ? createSession({ ...common, issuer: config.issuer, clientId: config.clientId })
      : createSession({
          ...common,
          clientId: config.legacyClientId,
          tokenEndpoint: `${origin}/token/`,
          revocationEndpoint: `${config.issuer}/revoke`,
          refresh: jsonProfile({
            url: `${origin}/refresh/`,
            request: "refresh",
            response: { accessToken: "access" },
          }),
        });
  for (const off of unsubscribe) off();
  unsubscribe = [
    created.on("refreshed", ({ source }) => {
      pickups = pickups.then(() => pickedUp(source));
      void showTokenStatus();
    }),
    created.on("expired", () => {
      log("error", "the session ended: sign in again");
      showSignIn("Your session ended. Sign in again.");
    }),
    created.on("logout", () => showSignIn()),
    created.on("error", ({ error }) =>
      log("error", `background refresh stopped: ${(error as Error).message}`),
    ),
  ];
  return created;
}

async function pickedUp(source: "this" | "other"): Promise<void> {
  const tokens = await session.getTokens();
  if (!tokens) return;
  const id = await tokenId(tokens.accessToken);
  // The SDK may announce the same tokens more than once (heard on the BroadcastChannel, and
  // found in storage after waiting for the lock), or ones this tab already uses: one line each.
  if (source === "other" && id !== knownToken) {
    log("other-tab", `another tab refreshed; this tab uses its access token ${id}`);
  }
  knownToken = id;
}

function switchMode(next: Mode): void {
  if (next === mode) return;
  session.dispose();
  mode = next;
  localStorage.setItem(MODE_KEY, mode);
  session = open(mode);
}

async function signIn(username: string, password: string): Promise<void> {
  if (mode === "standard") {
    await session.loginWithPassword(username, password, { scope: "openid todo" });
    return;
  }
  // The seed's login endpoint: {username, password} → {access, refresh}; the SDK takes it from there.
  const response = await observedFetch(`${origin}/token/`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  const body = (await response.json().catch(() => ({}))) as {
    access?: string;
    refresh?: string;
    detail?: string;
  };
  if (!response.ok || !body.access || !body.refresh) throw new Error(body.detail ?? "sign-in failed");
  await session.setTokens({
    accessToken: body.access,
    refreshToken: body.refresh,
    tokenType: "Bearer",
    raw: body,
  });
}

// ---- the API ----------------------------------------------------------------------------------

interface List {
  id: string;
  name: string;
  items_total: number;
  items_done: number;
}
interface Item {
  id: string;
  text: string;
  done: boolean;
}

class ApiError extends Error {}

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await session.fetch(`${origin}/api${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? null : JSON.stringify(body),
  });
  if (response.status === 204) return undefined as T;
  const json = (await response.json().catch(() => ({}))) as { error_description?: string };
  if (!response.ok) throw new ApiError(json.error_description ?? `the API answered ${response.status}`);
  return json as T;
}

// ---- rendering --------------------------------------------------------------------------------

let selected: string | undefined = sessionStorage.getItem("todo-demo:list") ?? undefined;

function showError(message: string | undefined): void {
  $("error").hidden = !message;
  $("error").textContent = message ?? "";
}

/** Runs a user action; any failure lands in the banner (never a token or a stack). */
async function act(action: () => Promise<void>): Promise<void> {
  try {
    await action();
    showError(undefined);
  } catch (error) {
    if (error instanceof SessionExpiredError) return showSignIn("Your session ended. Sign in again.");
    showError(error instanceof Error ? error.message : String(error));
  }
}

function showSignIn(message?: string): void {
  $("app").hidden = true;
  $("signin").hidden = false;
  $("signout").hidden = true;
  $("who").hidden = true;
  $("mode-badge").hidden = true;
  $("token-status").textContent = "";
  for (const radio of document.querySelectorAll<HTMLInputElement>("input[name=mode]")) {
    radio.checked = radio.value === mode;
  }
  showError(message);
}

async function showApp(): Promise<void> {
  const tokens = await session.getTokens();
  knownToken = tokens ? await tokenId(tokens.accessToken) : undefined;
  $("signin").hidden = true;
  $("app").hidden = false;
  $("signout").hidden = false;
  const badge = $("mode-badge");
  badge.hidden = false;
  badge.className = `badge ${mode}`;
  badge.textContent = mode === "standard" ? "OAuth refresh, rotating" : "legacy /refresh/";
  await showTokenStatus();
  await renderLists();
}

function jwtClaims(token: string): { exp?: number; preferred_username?: string; sub?: string } {
  try {
    return JSON.parse(atob((token.split(".")[1] ?? "").replace(/-/g, "+").replace(/_/g, "/")));
  } catch {
    return {};
  }
}

async function showTokenStatus(): Promise<void> {
  const tokens = await session.getTokens();
  if (!tokens) return;
  const claims = jwtClaims(tokens.accessToken);
  const left = claims.exp === undefined ? undefined : Math.round(claims.exp - Date.now() / 1000);
  $("token-status").textContent =
    `access token ${await tokenId(tokens.accessToken)} · ${left === undefined ? "" : left > 0 ? `expires in ${left} s` : "expired"}`;
  $("who").hidden = false;
  $("who").textContent = claims.preferred_username ?? "";
}

async function renderLists(): Promise<void> {
  const { lists } = await api<{ lists: List[] }>("GET", "/lists");
  if (selected && !lists.some((list) => list.id === selected)) selected = undefined;
  $("lists").replaceChildren(
    ...lists.map((list) => {
      const item = el("li", { className: list.id === selected ? "selected" : "" });
      item.dataset.id = list.id;
      const open = el("button", { className: "open", type: "button", textContent: list.name });
      open.append(
        el("span", { className: "count", textContent: `  ${list.items_done}/${list.items_total}` }),
      );
      open.addEventListener("click", () => act(() => select(list.id)));
      item.append(open);
      return item;
    }),
  );
  await renderList();
}

async function renderList(): Promise<void> {
  $("list-detail").hidden = !selected;
  if (!selected) {
    $("list-title").textContent = "Pick or create a list";
    return;
  }
  const list = await api<List & { items: Item[] }>("GET", `/lists/${selected}`);
  $("list-title").textContent = list.name;
  ($("list-name") as HTMLInputElement).value = list.name;
  const listId = list.id;
  $("items").replaceChildren(
    ...list.items.map((todo) => {
      const row = el("li", { className: todo.done ? "done" : "" });
      row.dataset.id = todo.id;
      const box = el("input", { type: "checkbox", checked: todo.done });
      box.setAttribute("aria-label", `done: ${todo.text}`);
      box.addEventListener("change", () =>
        act(async () => {
          await api("PATCH", `/lists/${listId}/items/${todo.id}`, { done: box.checked });
          await renderLists();
        }),
      );
      const remove = el("button", { className: "danger", type: "button", textContent: "Delete" });
      remove.setAttribute("aria-label", `delete ${todo.text}`);
      remove.addEventListener("click", () =>
        act(async () => {
          await api("DELETE", `/lists/${listId}/items/${todo.id}`);
          await renderLists();
        }),
      );
      row.append(box, el("span", { className: "text", textContent: todo.text }), remove);
      return row;
    }),
  );
}

async function select(id: string): Promise<void> {
  selected = id;
  sessionStorage.setItem("todo-demo:list", id);
  await renderLists();
}

/** Wires a form: prevents the page load, runs the action, resets the form on success. */
function onSubmit(id: string, action: (form: HTMLFormElement) => Promise<void>): void {
  const form = $<HTMLFormElement>(id);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void act(async () => {
      await action(form);
      if (id !== "rename-list") form.reset();
    });
  });
}

const value = (id: string) => ($(id) as HTMLInputElement).value;

onSubmit("signin-form", async () => {
  const chosen = document.querySelector<HTMLInputElement>("input[name=mode]:checked")?.value as Mode;
  switchMode(chosen);
  await signIn(value("username"), value("password"));
  await showApp();
});
onSubmit("new-list", async () => {
  const list = await api<List>("POST", "/lists", { name: value("new-list-name") });
  await select(list.id);
});
onSubmit("rename-list", async () => {
  await api("PATCH", `/lists/${selected}`, { name: value("list-name") });
  await renderLists();
});
onSubmit("new-item", async () => {
  await api("POST", `/lists/${selected}/items`, { text: value("new-item-text") });
  await renderLists();
});
$("delete-list").addEventListener("click", () =>
  act(async () => {
    await api("DELETE", `/lists/${selected}`);
    selected = undefined;
    await renderLists();
  }),
);
$("signout").addEventListener("click", () =>
  act(async () => {
    const { revoked } = await session.logout();
    log("signout", revoked ? "signed out; the refresh token is revoked" : "signed out locally");
    showSignIn();
  }),
);
$("refresh-now").addEventListener("click", () => act(async () => void (await session.refresh())));
$("lose-response").addEventListener("change", (event) => {
  loseNextRefresh = (event.target as HTMLInputElement).checked;
});
// Another tab signed in or switched the refresh style: follow it.
addEventListener("storage", (event) => {
  if (event.key === MODE_KEY && event.newValue && event.newValue !== mode) {
    switchMode(event.newValue as Mode);
    void start();
  }
});
setInterval(() => void showTokenStatus(), 1000);

async function start(): Promise<void> {
  if (await session.getTokens()) await act(showApp);
  else showSignIn();
}
void start();
