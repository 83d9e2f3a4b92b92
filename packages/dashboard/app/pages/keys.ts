import { api } from "../api.ts";
import { confirmAction } from "../dialogs.ts";
import { h, pill, replace } from "../dom.ts";
import { dataTable, errorText } from "../table.ts";

interface Key {
  kid: string;
  alg: string;
  current: boolean;
}

/** Signing keys: the current one and those still published after a rotation; rotate. */
export async function keysPage(main: HTMLElement): Promise<void> {
  const status = h("p", { role: "status", class: "notice" });
  const body = h("div");
  const load = async () => {
    try {
      const keys = await api<Key[]>("GET", "/admin/keys");
      replace(
        body,
        dataTable(
          "Signing keys",
          [
            { label: "Key id", cell: (k: Key) => h("span", { class: "mono" }, k.kid) },
            { label: "Algorithm", cell: (k: Key) => k.alg },
            {
              label: "Use",
              cell: (k: Key) => (k.current ? pill("signing", "ok") : pill("verifying only (overlap)")),
            },
          ],
          keys,
        ),
      );
    } catch (err) {
      status.textContent = errorText(err);
    }
  };
  replace(
    main,
    h("h1", null, "Signing keys"),
    h(
      "p",
      { class: "muted" },
      "The issuer signs with the current key; after a rotation the old one stays in /jwks until every token it signed has expired.",
    ),
    status,
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
                "Rotate the signing key?",
                "A new key signs from now on; the old one keeps verifying until the longest access-token lifetime has passed.",
                "Rotate key",
              ))
            )
              return;
            try {
              const k = await api<{ kid: string }>("POST", "/admin/keys/rotate");
              status.textContent = `New signing key ${k.kid}.`;
              await load();
            } catch (err) {
              status.textContent = errorText(err);
            }
          },
        },
        "Rotate signing key",
      ),
    ),
  );
  await load();
}
