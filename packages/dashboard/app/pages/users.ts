import { api, enc, query } from "../api.ts";
import { confirmAction, formDialog } from "../dialogs.ts";
import { field, h, pill, replace, timeCell } from "../dom.ts";
import { errorText, filterBar, offsetPage, pagedList } from "../table.ts";

export interface User {
  id: string;
  username: string;
  email: string | null;
  is_admin: boolean;
  disabled_at: string | null;
  created_at: string;
}

/** Users: search and page, create, make admin, disable, reset the password, delete. */
export function usersPage(main: HTMLElement): void {
  const status = h("p", { role: "status", class: "notice" });
  const search = h("input", { type: "search", name: "q", placeholder: "part of a username or email" });

  const act = async (work: () => Promise<unknown>, done: string) => {
    try {
      await work();
      status.textContent = done;
      list.refresh();
    } catch (err) {
      status.textContent = errorText(err);
    }
  };

  const actions = (u: User) =>
    h(
      "div",
      { class: "row-actions" },
      h("a", { href: `#/sessions?user_id=${enc(u.id)}` }, "Sessions"),
      h(
        "button",
        {
          type: "button",
          onclick: async () => {
            const v = await formDialog(
              `Reset ${u.username}'s password`,
              [
                {
                  name: "password",
                  label: "New password",
                  type: "password",
                  required: true,
                  minlength: 8,
                  autocomplete: "new-password",
                  help: "At least 8 characters.",
                },
              ],
              "Set password",
              "Every session this user has is ended: apps must sign in again.",
            );
            if (v)
              await act(
                () => api("PATCH", `/admin/users/${enc(u.id)}`, { password: v.password }),
                `Password of ${u.username} changed; their sessions ended.`,
              );
          },
        },
        "Reset password",
      ),
      h(
        "button",
        {
          type: "button",
          onclick: async () => {
            if (
              u.is_admin ||
              (await confirmAction(
                `Make ${u.username} an administrator?`,
                "They can then sign in to this dashboard and change everything here.",
                "Make admin",
              ))
            ) {
              await act(
                () => api("PATCH", `/admin/users/${enc(u.id)}`, { admin: !u.is_admin }),
                `${u.username} is ${u.is_admin ? "no longer" : "now"} an administrator.`,
              );
            }
          },
        },
        u.is_admin ? "Remove admin" : "Make admin",
      ),
      h(
        "button",
        {
          type: "button",
          onclick: async () => {
            if (u.disabled_at) {
              await act(
                () => api("PATCH", `/admin/users/${enc(u.id)}`, { disabled: false }),
                `${u.username} may log in again.`,
              );
            } else if (
              await confirmAction(
                `Disable ${u.username}?`,
                "Their sessions end now and they cannot log in until enabled again.",
                "Disable",
              )
            ) {
              await act(
                () => api("PATCH", `/admin/users/${enc(u.id)}`, { disabled: true }),
                `${u.username} is disabled.`,
              );
            }
          },
        },
        u.disabled_at ? "Enable" : "Disable",
      ),
      h(
        "button",
        {
          type: "button",
          class: "danger",
          onclick: async () => {
            if (
              await confirmAction(
                `Delete ${u.username}?`,
                "The user and all their sessions are deleted. This cannot be undone.",
                "Delete user",
              )
            ) {
              await act(() => api("DELETE", `/admin/users/${enc(u.id)}`), `${u.username} deleted.`);
            }
          },
        },
        "Delete",
      ),
    );

  const list = pagedList<User>({
    caption: "Users",
    empty: "No users match.",
    columns: [
      { label: "Username", cell: (u) => h("span", { class: "mono" }, u.username) },
      { label: "Email", cell: (u) => u.email ?? "—" },
      {
        label: "Status",
        cell: (u) => [
          u.disabled_at ? pill("disabled", "bad") : pill("active", "ok"),
          u.is_admin ? pill("admin", "warn") : null,
        ],
      },
      { label: "Created", cell: (u) => timeCell(u.created_at) },
      { label: "Actions", cell: actions },
    ],
    load: (cursor) =>
      offsetPage(cursor, (offset, limit) =>
        api<User[]>("GET", `/admin/users${query({ q: search.value.trim(), offset, limit })}`),
      ),
  });

  const username = h("input", { name: "username", required: true, autocomplete: "off" });
  const email = h("input", { name: "email", type: "email", autocomplete: "off" });
  const password = h("input", {
    name: "password",
    type: "password",
    required: true,
    minlength: 8,
    autocomplete: "new-password",
  });
  const admin = h("input", { name: "admin", type: "checkbox" });
  const create = h(
    "form",
    {
      class: "card",
      "aria-labelledby": "new-user",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        const body = {
          username: username.value,
          password: password.value,
          email: email.value || undefined,
          admin: admin.checked,
        };
        password.value = "";
        await act(async () => {
          await api("POST", "/admin/users", body);
          username.value = "";
          email.value = "";
          admin.checked = false;
        }, `User ${body.username} created.`);
        list.reload();
      },
    },
    h("h2", { id: "new-user" }, "New user"),
    h(
      "div",
      { class: "grid" },
      field("Username", username, "Compared exactly: no spaces or invisible characters."),
      field("Email (optional)", email),
      field("Password", password, "At least 8 characters; stored as an scrypt hash."),
    ),
    h("label", { class: "check" }, admin, " Administrator (may sign in to this dashboard)"),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create user")),
  );

  replace(
    main,
    h("h1", null, "Users"),
    status,
    filterBar("Search users", [field("Search", search)], () => list.reload()),
    list.element,
    create,
  );
}
