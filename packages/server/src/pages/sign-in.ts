import { escapeHtml as h, page } from "./layout.ts";

const SCOPE_TEXT: Record<string, string> = {
  openid: "Confirm that it is you",
  profile: "See your username",
  email: "See your email address",
  offline_access: "Stay signed in while you are away (keep access without asking again)",
};

const hidden = (name: string, value: string) => `<input type="hidden" name="${h(name)}" value="${h(value)}">`;

export interface LoginPageInput {
  appName: string;
  csrf: string;
  /** The authorization request's query string, submitted back with the form. */
  request: string;
  username?: string;
  error?: string;
}

/** The login form: labelled fields, the error announced to screen readers, focus on the first empty field. */
export function loginPage(p: LoginPageInput): string {
  const focusPassword = Boolean(p.username);
  return page(
    "Sign in",
    `<h1>Sign in</h1>
<p>to continue to <span class="app">${h(p.appName)}</span></p>
${p.error ? `<p class="error" role="alert" id="login-error">${h(p.error)}</p>` : ""}
<form method="post" action="/authorize/login">
${hidden("csrf", p.csrf)}${hidden("request", p.request)}
<label for="username">Username</label>
<input type="text" id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required value="${h(p.username ?? "")}"${focusPassword ? "" : " autofocus"}${p.error ? ' aria-describedby="login-error"' : ""}>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required${focusPassword ? " autofocus" : ""}>
<div class="actions"><button type="submit" class="primary">Sign in</button></div>
</form>`,
  );
}

export interface ConsentPageInput {
  appName: string;
  username: string;
  scopes: string[];
  csrf: string;
  request: string;
}

/** The list items describing scopes in plain words. */
export function scopeDescriptions(scopes: string[]): string {
  return scopes.length
    ? scopes.map((s) => `<li>${h(SCOPE_TEXT[s] ?? `Use “${s}”`)}</li>`).join("\n")
    : "<li>Sign you in</li>";
}

/** Asks the signed-in user to allow an app the listed scopes. */
export function consentPage(p: ConsentPageInput): string {
  const items = scopeDescriptions(p.scopes);
  return page(
    "Allow access",
    `<h1>Allow <span class="app">${h(p.appName)}</span>?</h1>
<p>Signed in as <strong>${h(p.username)}</strong>. The app is asking to:</p>
<ul>
${items}
</ul>
<form method="post" action="/authorize/consent">
${hidden("csrf", p.csrf)}${hidden("request", p.request)}
<div class="actions">
<button type="submit" name="decision" value="allow" class="primary" autofocus>Allow</button>
<button type="submit" name="decision" value="deny" class="secondary">Deny</button>
</div>
</form>`,
  );
}

/** Shown instead of a redirect when the app or its return address cannot be trusted. */
export function errorPage(title: string, message: string): string {
  return page(
    title,
    `<h1>${h(title)}</h1>
<p role="alert">${h(message)}</p>
<p class="muted">You can close this window and return to the app.</p>`,
  );
}

export interface LogoutPageInput {
  csrf: string;
  /** The end-session request's parameters, submitted back with the form. */
  request: string;
  username: string;
}

/** Asks before ending the login session when the request does not prove which app sent it. */
export function logoutPage(p: LogoutPageInput): string {
  return page(
    "Sign out",
    `<h1>Sign out?</h1>
<p>You are signed in as <strong>${h(p.username)}</strong>.</p>
<form method="post" action="/end-session">
${hidden("csrf", p.csrf)}${hidden("request", p.request)}${hidden("confirm", "yes")}
<label class="check"><input type="checkbox" name="revoke_refresh_tokens" value="true"> Also sign out of the apps this sign-in started</label>
<div class="actions"><button type="submit" class="primary" autofocus>Sign out</button></div>
</form>`,
  );
}

/** After logout, when no app asked to be returned to. */
export function signedOutPage(): string {
  return page("Signed out", `<h1>You are signed out</h1>\n<p>You can close this window.</p>`);
}
