import { escapeHtml as h, page } from "./layout.ts";
import { scopeDescriptions } from "./sign-in.ts";

const hidden = (name: string, value: string) => `<input type="hidden" name="${h(name)}" value="${h(value)}">`;

export interface DeviceCodePageInput {
  csrf: string;
  userCode?: string;
  /** Signed in already: no username and password fields. */
  signedInAs?: string;
  error?: string;
}

/** RFC 8628 verification page: the code shown on the device, and sign-in when needed. */
export function deviceCodePage(p: DeviceCodePageInput): string {
  const credentials = p.signedInAs
    ? `<p>Signed in as <strong>${h(p.signedInAs)}</strong>.</p>`
    : `<label for="username">Username</label>
<input type="text" id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>`;
  return page(
    "Connect a device",
    `<h1>Connect a device</h1>
<p>Enter the code shown on your TV, console or terminal.</p>
${p.error ? `<p class="error" role="alert" id="device-error">${h(p.error)}</p>` : ""}
<form method="post" action="/device">
${hidden("csrf", p.csrf)}
<label for="user_code">Code</label>
<input type="text" id="user_code" name="user_code" autocomplete="one-time-code" autocapitalize="characters" spellcheck="false" required value="${h(p.userCode ?? "")}"${p.userCode ? "" : " autofocus"}${p.error ? ' aria-describedby="device-error"' : ""}>
${credentials}
<div class="actions"><button type="submit" class="primary">Continue</button></div>
</form>`,
  );
}

export interface DeviceConsentPageInput {
  csrf: string;
  userCode: string;
  appName: string;
  username: string;
  scopes: string[];
}

/** Always asked for a device: the code may have been sent by someone else (RFC 8628 §5.4). */
export function deviceConsentPage(p: DeviceConsentPageInput): string {
  return page(
    "Allow device",
    `<h1>Allow <span class="app">${h(p.appName)}</span> on your device?</h1>
<p>Signed in as <strong>${h(p.username)}</strong>. Only continue if you started this on your own device
and it shows the code <strong>${h(p.userCode)}</strong>. The app is asking to:</p>
<ul>
${scopeDescriptions(p.scopes)}
</ul>
<form method="post" action="/device/confirm">
${hidden("csrf", p.csrf)}${hidden("user_code", p.userCode)}
<div class="actions">
<button type="submit" name="decision" value="allow" class="primary" autofocus>Allow</button>
<button type="submit" name="decision" value="deny" class="secondary">Deny</button>
</div>
</form>`,
  );
}

/** The end of the device flow in the browser. */
export function deviceDonePage(allowed: boolean): string {
  return allowed
    ? page("Device connected", "<h1>Device connected</h1>\n<p>You can return to your device now.</p>")
    : page("Request denied", "<h1>Request denied</h1>\n<p>The device was not given access.</p>");
}
