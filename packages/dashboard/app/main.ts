import { setCredentials, whenUnauthorized, credentials } from "./api.ts";
import {
  type DashboardConfig,
  completeIssuerSignIn,
  restoreCredentials,
  signInWithIssuer,
  signInWithToken,
} from "./auth.ts";
import { field, h, replace } from "./dom.ts";
import { auditPage } from "./pages/audit.ts";
import { connectionPage, connectionsPage, providersPage, webhookPage, webhooksPage } from "./pages/broker.ts";
import { clientPage, clientsPage } from "./pages/clients.ts";
import { keysPage } from "./pages/keys.ts";
import { overviewPage } from "./pages/overview.ts";
import { sessionPage, sessionsPage } from "./pages/sessions.ts";
import { usersPage } from "./pages/users.ts";
import { currentRoute } from "./router.ts";
import { errorText } from "./table.ts";

const root = document.getElementById("app")!;

const NAV: [string, string][] = [
  ["", "Overview"],
  ["users", "Users"],
  ["clients", "Clients"],
  ["sessions", "Sessions"],
  ["audit", "Audit log"],
  ["keys", "Signing keys"],
  ["providers", "Providers"],
  ["connections", "Connections"],
  ["webhooks", "Webhooks"],
];

function signInPage(config: DashboardConfig, message = ""): void {
  const token = h("input", {
    type: "password",
    name: "token",
    required: true,
    autocomplete: "off",
    spellcheck: "false",
  });
  const status = h("p", { class: "error", role: "alert" }, message);
  replace(
    root,
    h(
      "main",
      { class: "sign-in", id: "main" },
      h("h1", null, "Evergreen dashboard"),
      status,
      config.issuer_sign_in
        ? h(
            "section",
            { class: "card" },
            h("h2", null, "Sign in with your account"),
            h(
              "p",
              null,
              "Administrators sign in at the issuer; the dashboard then acts with your short-lived access token.",
            ),
            h(
              "button",
              {
                type: "button",
                class: "primary",
                onclick: () => signInWithIssuer(config).catch((err) => (status.textContent = errorText(err))),
              },
              "Sign in with Evergreen",
            ),
          )
        : null,
      h(
        "form",
        {
          class: "card",
          onsubmit: async (e: Event) => {
            e.preventDefault();
            try {
              const c = await signInWithToken(token.value);
              token.value = "";
              start(config, c);
            } catch (err) {
              status.textContent = errorText(err);
            }
          },
        },
        h("h2", null, "Sign in with the admin token"),
        field(
          "Admin token",
          token,
          "Printed by `evergreen serve` on its first start (or EVERGREEN_ADMIN_TOKEN). Kept in this tab only, until you sign out or close it.",
        ),
        h("div", { class: "actions" }, h("button", { type: "submit" }, "Sign in")),
      ),
    ),
  );
}

let cleanup: (() => void) | undefined;

function route(main: HTMLElement): void {
  cleanup?.();
  cleanup = undefined;
  const { path, params } = currentRoute();
  const [page = "", id] = path;
  for (const a of document.querySelectorAll<HTMLAnchorElement>("nav.main a")) {
    if (a.dataset.page === page) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const result = (() => {
    switch (page) {
      case "":
        return overviewPage(main);
      case "users":
        return usersPage(main);
      case "clients":
        return id ? clientPage(main, id) : clientsPage(main);
      case "sessions":
        return id ? sessionPage(main, id) : sessionsPage(main, params);
      case "audit":
        return auditPage(main, params);
      case "keys":
        return keysPage(main);
      case "providers":
        return providersPage(main);
      case "connections":
        return id ? connectionPage(main, id) : connectionsPage(main, params);
      case "webhooks":
        return id ? webhookPage(main, id) : webhooksPage(main);
      default:
        replace(
          main,
          h("h1", null, "Not found"),
          h("p", null, h("a", { href: "#/" }, "Back to the overview")),
        );
    }
  })();
  if (typeof result === "function") cleanup = result;
  document.title = `${NAV.find(([p]) => p === page)?.[1] ?? "Evergreen"} · Evergreen dashboard`;
}

let onHash: (() => void) | undefined;

function start(config: DashboardConfig, c: NonNullable<ReturnType<typeof credentials>>): void {
  setCredentials(c);
  const main = h("main", { id: "main", tabindex: "-1" });
  const signOut = h(
    "button",
    {
      type: "button",
      onclick: async () => {
        cleanup?.();
        await c.signOut();
        setCredentials(null);
        if (onHash) window.removeEventListener("hashchange", onHash);
        signInPage(config, "Signed out.");
      },
    },
    "Sign out",
  );
  replace(
    root,
    h("a", { href: "#main", class: "skip" }, "Skip to content"),
    h(
      "header",
      { class: "top" },
      h("a", { href: "#/", class: "brand" }, "Evergreen"),
      h(
        "span",
        { class: "muted who" },
        c.kind === "issuer" ? "signed in as an administrator" : "admin token",
      ),
      signOut,
    ),
    h(
      "nav",
      { class: "main", "aria-label": "Dashboard" },
      h(
        "ul",
        null,
        NAV.map(([p, label]) => h("li", null, h("a", { href: `#/${p}`, "data-page": p }, label))),
      ),
    ),
    main,
  );
  if (onHash) window.removeEventListener("hashchange", onHash);
  onHash = () => {
    route(main);
    main.focus({ preventScroll: true });
  };
  window.addEventListener("hashchange", onHash);
  route(main);
}

async function boot(): Promise<void> {
  const config = (await (
    await fetch("/dashboard/config.json", { credentials: "omit" })
  ).json()) as DashboardConfig;
  whenUnauthorized(() => {
    cleanup?.();
    void credentials()?.signOut();
    setCredentials(null);
    signInPage(config, "Your sign-in is no longer accepted; sign in again.");
  });
  if (location.pathname.endsWith("/dashboard/callback")) {
    try {
      start(config, await completeIssuerSignIn(config));
    } catch (err) {
      signInPage(config, errorText(err));
    }
    return;
  }
  const c = await restoreCredentials(config);
  if (c) start(config, c);
  else signInPage(config);
}

boot().catch((err) =>
  replace(
    root,
    h("p", { class: "error", role: "alert" }, `The dashboard could not start: ${errorText(err)}`),
  ),
);
