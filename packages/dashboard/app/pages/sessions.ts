import { api, enc, query } from "../api.ts";
import { confirmAction } from "../dialogs.ts";
import { type Child, duration, field, h, pill, relative, replace, timeCell, when } from "../dom.ts";
import { errorText, filterBar, offsetPage, pagedList } from "../table.ts";

interface SessionRow {
  sid: string;
  user_id: string | null;
  username: string | null;
  client_id: string;
  scope: string;
  created_at: string;
  last_refreshed_at: string | null;
  idle_expires_at: string | null;
  absolute_expires_at: string;
  revoked_at: string | null;
  revoked_reason: string | null;
  generation: number | null;
  active: boolean;
}

interface TimelineEvent {
  id: string;
  at: string;
  type: string;
  token_id: string | null;
  ip: string | null;
  detail: Record<string, unknown> | null;
  generation: number | null;
}

interface SessionDetail extends SessionRow {
  rotate_refresh_tokens: boolean;
  refresh_token_idle_ttl: number;
  refresh_token_reuse_grace: number;
  timeline: TimelineEvent[];
  next_before: string | null;
}

function state(s: SessionRow): HTMLElement {
  if (s.active) return pill("active", "ok");
  if (s.revoked_at) return pill(`revoked${s.revoked_reason ? `: ${s.revoked_reason}` : ""}`, "bad");
  return pill("ended", "muted");
}

const short = (id: string) => id.slice(0, 8);

/** Sessions (refresh-token families) of every user, filtered and paged. */
export function sessionsPage(main: HTMLElement, params: URLSearchParams): void {
  const userId = h("input", {
    name: "user_id",
    value: params.get("user_id") ?? "",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "user id",
  });
  const clientId = h("input", {
    name: "client_id",
    value: params.get("client_id") ?? "",
    autocomplete: "off",
    spellcheck: "false",
  });
  const stateSel = h(
    "select",
    { name: "state" },
    [
      ["", "any"],
      ["active", "active"],
      ["ended", "ended (revoked or expired)"],
    ].map(([v, l]) => h("option", { value: v!, selected: (params.get("state") ?? "") === v }, l!)),
  );
  const list = pagedList<SessionRow>({
    caption: "Sessions",
    empty: "No sessions match.",
    columns: [
      {
        label: "Session",
        cell: (s) =>
          h(
            "a",
            { href: `#/sessions/${enc(s.sid)}`, class: "mono", "aria-label": `Session ${s.sid}` },
            short(s.sid),
          ),
      },
      { label: "User", cell: (s) => s.username ?? "—" },
      { label: "Client", cell: (s) => h("span", { class: "mono" }, s.client_id) },
      { label: "State", cell: state },
      { label: "Generation", cell: (s) => (s.generation === null ? "—" : String(s.generation)) },
      { label: "Signed in", cell: (s) => timeCell(s.created_at) },
      { label: "Last refresh", cell: (s) => timeCell(s.last_refreshed_at) },
      { label: "Idle expiry", cell: (s) => (s.active ? timeCell(s.idle_expires_at) : "—") },
    ],
    load: (cursor) =>
      offsetPage(cursor, (offset, limit) =>
        api<SessionRow[]>(
          "GET",
          `/admin/sessions${query({ user_id: userId.value.trim(), client_id: clientId.value.trim(), state: stateSel.value, offset, limit })}`,
        ),
      ),
  });
  replace(
    main,
    h("h1", null, "Sessions"),
    h("p", { class: "muted" }, "Each session is one login: a family of refresh tokens, one live at a time."),
    filterBar(
      "Filter sessions",
      [field("User id", userId), field("Client", clientId), field("State", stateSel)],
      () => list.reload(),
    ),
    list.element,
  );
}

/** What one audit event means in a session's life. */
function describe(e: TimelineEvent): { title: string; tone: string; text: Child } {
  const d = e.detail ?? {};
  const gen = (e.generation ?? d.generation) as number | undefined;
  switch (e.type) {
    case "login":
      return {
        title: "Login",
        tone: "ok",
        text: `Session started; refresh token generation ${gen ?? 1} issued.`,
      };
    case "refresh":
      return gen
        ? {
            title: `Rotation → generation ${gen}`,
            tone: "ok",
            text: `Generation ${gen - 1} spent, generation ${gen} issued with a new access token.`,
          }
        : { title: "Refresh (sliding)", tone: "ok", text: "Same refresh token, idle expiry moved on." };
    case "refresh_replayed":
      return {
        title: "Grace replay",
        tone: "warn",
        text: `Generation ${gen ?? "?"} presented again within its grace window: the same successor was returned, nothing new minted.`,
      };
    case "refresh_token_reuse":
      return {
        title: "Reuse detected",
        tone: "bad",
        text: `Generation ${gen ?? "?"} presented after its grace window closed: the whole session was revoked.`,
      };
    case "session_revoked":
      return { title: "Revoked", tone: "bad", text: `Ended${d.via ? ` via ${String(d.via)}` : ""}.` };
    case "token_revoked":
      return {
        title: "Revoked by the app",
        tone: "bad",
        text: "The refresh token was revoked at /revoke (RFC 7009): the session ended.",
      };
    case "session_evicted":
      return {
        title: "Evicted",
        tone: "bad",
        text: "A newer login went past the client's sessions-per-user cap.",
      };
    default:
      return { title: e.type, tone: "muted", text: JSON.stringify(d) };
  }
}

/** One session as a timeline: what happened (newest first) and what is ahead; revoke. */
export function sessionPage(main: HTMLElement, sid: string): () => void {
  const status = h("p", { role: "status", class: "notice" });
  const summary = h("div");
  const timeline = h("ol", { class: "timeline", "aria-label": "Session timeline, newest first" });
  const older = h("button", { type: "button", hidden: true }, "Older events");
  let oldest: string | null = null;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let seen = new Set<string>();

  const item = (e: TimelineEvent) => {
    const d = describe(e);
    return h(
      "li",
      { class: `event ${d.tone}`, "data-type": e.type },
      h(
        "div",
        { class: "event-head" },
        h("strong", null, d.title),
        " ",
        h("time", { datetime: e.at }, when(e.at)),
      ),
      h("p", null, d.text),
      e.ip || e.token_id
        ? h("p", { class: "muted mono" }, [
            e.ip ? `from ${e.ip}` : null,
            e.token_id ? ` token ${e.token_id}` : null,
          ])
        : null,
    );
  };

  const ahead = (s: SessionDetail): HTMLElement[] => {
    if (!s.active) return [];
    const out: HTMLElement[] = [];
    if (s.idle_expires_at) {
      out.push(
        h(
          "li",
          { class: "event ahead" },
          h(
            "div",
            { class: "event-head" },
            h("strong", null, "Idle expiry ahead"),
            " ",
            h(
              "time",
              { datetime: s.idle_expires_at },
              `${when(s.idle_expires_at)} (${relative(s.idle_expires_at)})`,
            ),
          ),
          h(
            "p",
            null,
            `Unless the app refreshes before then (idle lifetime ${duration(s.refresh_token_idle_ttl)}).`,
          ),
        ),
      );
    }
    out.push(
      h(
        "li",
        { class: "event ahead" },
        h(
          "div",
          { class: "event-head" },
          h("strong", null, "Absolute expiry ahead"),
          " ",
          h(
            "time",
            { datetime: s.absolute_expires_at },
            `${when(s.absolute_expires_at)} (${relative(s.absolute_expires_at)})`,
          ),
        ),
        h("p", null, "No refresh keeps the session beyond this; the user signs in again."),
      ),
    );
    return out;
  };

  async function load(initial: boolean) {
    try {
      const s = await api<SessionDetail>("GET", `/admin/sessions/${enc(sid)}${query({ limit: 50 })}`);
      replace(
        summary,
        h(
          "dl",
          { class: "facts" },
          h("dt", null, "State"),
          h("dd", null, state(s)),
          h("dt", null, "User"),
          h("dd", null, s.username ?? "—"),
          h("dt", null, "Client"),
          h("dd", null, h("a", { href: `#/clients/${enc(s.client_id)}`, class: "mono" }, s.client_id)),
          h("dt", null, "Scope"),
          h("dd", { class: "mono" }, s.scope || "—"),
          h("dt", null, "Live generation"),
          h("dd", { "data-testid": "generation" }, s.generation === null ? "—" : String(s.generation)),
          h("dt", null, "Rotation"),
          h(
            "dd",
            null,
            s.rotate_refresh_tokens ? `on, grace window ${s.refresh_token_reuse_grace} s` : "off (sliding)",
          ),
        ),
        s.active
          ? h(
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
                        "Revoke this session?",
                        "Its refresh token stops working at once; the app must sign in again. Access tokens already issued live out their few minutes.",
                        "Revoke session",
                      ))
                    )
                      return;
                    try {
                      await api("DELETE", `/admin/sessions/${enc(sid)}`);
                      status.textContent = "Session revoked.";
                      await load(true);
                    } catch (err) {
                      status.textContent = errorText(err);
                    }
                  },
                },
                "Revoke session",
              ),
            )
          : null,
      );
      if (initial) {
        seen = new Set(s.timeline.map((e) => e.id));
        replace(timeline, ahead(s), s.timeline.map(item));
        oldest = s.next_before;
        older.hidden = oldest === null;
      } else {
        // New events go on top, under what is still ahead.
        for (const a of timeline.querySelectorAll(".ahead")) a.remove();
        const fresh = s.timeline.filter((e) => !seen.has(e.id));
        for (const e of fresh) seen.add(e.id);
        timeline.prepend(...ahead(s), ...fresh.map(item));
      }
    } catch (err) {
      status.textContent = errorText(err);
    }
  }

  older.addEventListener("click", async () => {
    if (oldest === null) return;
    try {
      const s = await api<SessionDetail>(
        "GET",
        `/admin/sessions/${enc(sid)}${query({ before: oldest, limit: 50 })}`,
      );
      for (const e of s.timeline) seen.add(e.id);
      timeline.append(...s.timeline.map(item));
      oldest = s.next_before;
      older.hidden = oldest === null;
    } catch (err) {
      status.textContent = errorText(err);
    }
  });

  replace(
    main,
    h("p", null, h("a", { href: "#/sessions" }, "← Sessions")),
    h("h1", null, "Session ", h("span", { class: "mono" }, short(sid))),
    h("p", { class: "muted mono" }, sid),
    status,
    summary,
    h("h2", null, "Timeline"),
    h("p", { class: "muted" }, "Updates every 3 seconds."),
    timeline,
    older,
  );
  const tick = async () => {
    await load(false);
    if (!stopped) timer = setTimeout(tick, 3000);
  };
  void load(true).then(() => {
    if (!stopped) timer = setTimeout(tick, 3000);
  });
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
