/**
 * Starting points for well-known providers: their documented token endpoints and response
 * shapes only. Nothing here is ever called; `template: "<name>"` copies the fields and the
 * request's own fields win.
 */
export interface ProviderTemplate {
  token_url: string;
  auth_style: "basic" | "body";
  body_format: "form" | "json";
  default_ttl?: number;
  extra_headers?: Record<string, string>;
  response?: Record<string, unknown>;
  /** Why the template looks the way it does. */
  note: string;
}

export const PROVIDER_TEMPLATES: Record<string, ProviderTemplate> = {
  google: {
    token_url: "https://oauth2.googleapis.com/token",
    auth_style: "body",
    body_format: "form",
    note: "Standard response; the refresh token is usually not returned again (the stored one is kept).",
  },
  microsoft: {
    token_url: "https://login.microsoftonline.com/common/oauth2/v2.0/token",
    auth_style: "body",
    body_format: "form",
    note: "Replace 'common' with your tenant id; refresh tokens rotate on every use.",
  },
  github: {
    token_url: "https://github.com/login/oauth/access_token",
    auth_style: "body",
    body_format: "form",
    extra_headers: { accept: "application/json" },
    note: "GitHub Apps with expiring user tokens; JSON only when asked for with Accept.",
  },
  salesforce: {
    token_url: "https://login.salesforce.com/services/oauth2/token",
    auth_style: "body",
    body_format: "form",
    default_ttl: 7200,
    note: "No expires_in in the response: the session timeout applies, so default_ttl is used.",
  },
  hubspot: {
    token_url: "https://api.hubapi.com/oauth/v1/token",
    auth_style: "body",
    body_format: "form",
    note: "Standard response with expires_in.",
  },
  xero: {
    token_url: "https://identity.xero.com/connect/token",
    auth_style: "basic",
    body_format: "form",
    note: "Client credentials in HTTP Basic; refresh tokens rotate on every use.",
  },
  dropbox: {
    token_url: "https://api.dropboxapi.com/oauth2/token",
    auth_style: "body",
    body_format: "form",
    note: "Short-lived access tokens; the refresh token is not rotated.",
  },
};
