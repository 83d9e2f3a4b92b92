import { type Child, field, h } from "./dom.ts";

/** Opens a modal <dialog> (focus moves into it, Escape closes it) and removes it when closed. */
function open(dialog: HTMLDialogElement): void {
  document.body.append(dialog);
  dialog.addEventListener("close", () => dialog.remove());
  dialog.showModal();
}

/**
 * Asks once before a destructive action. Resolves true only if the person pressed the action
 * button; Escape, Cancel or a click outside are a no.
 */
export function confirmAction(title: string, message: Child, action: string): Promise<boolean> {
  return new Promise((resolve) => {
    const dialog = h("dialog", { class: "confirm", "aria-labelledby": "confirm-title" });
    const cancel = h("button", { type: "button", onclick: () => dialog.close("cancel") }, "Cancel");
    const go = h("button", { type: "button", class: "danger", onclick: () => dialog.close("ok") }, action);
    dialog.append(
      h("h2", { id: "confirm-title" }, title),
      h("div", { class: "message" }, message),
      h("div", { class: "actions" }, cancel, go),
    );
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"));
    open(dialog);
    cancel.focus();
  });
}

/**
 * Shows a secret that exists in readable form only now (a client secret, an API key). Closing
 * the dialog drops it from the page; nothing keeps it.
 */
export function showSecretOnce(title: string, label: string, secret: string): Promise<void> {
  return new Promise((resolve) => {
    const dialog = h("dialog", { class: "secret", "aria-labelledby": "secret-title" });
    const input = h("input", {
      type: "text",
      readonly: true,
      value: secret,
      class: "mono",
      spellcheck: "false",
    });
    const copied = h("span", { class: "muted", role: "status" });
    const copy = h(
      "button",
      {
        type: "button",
        onclick: async () => {
          input.select();
          try {
            await navigator.clipboard.writeText(secret);
            copied.textContent = "Copied.";
          } catch {
            copied.textContent = "Select the text and copy it.";
          }
        },
      },
      "Copy",
    );
    dialog.append(
      h("h2", { id: "secret-title" }, title),
      h("p", null, "This is the only time it is shown. Store it now: the server keeps only its hash."),
      field(label, input),
      h(
        "div",
        { class: "actions" },
        copied,
        copy,
        h("button", { type: "button", onclick: () => dialog.close() }, "Done"),
      ),
    );
    dialog.addEventListener("close", () => {
      input.value = "";
      resolve();
    });
    open(dialog);
    input.focus();
    input.select();
  });
}

export interface FormField {
  name: string;
  label: string;
  type?: string;
  help?: string;
  required?: boolean;
  autocomplete?: string;
  minlength?: number;
}

/** A small modal form; resolves with the values, or null when cancelled. */
export function formDialog(
  title: string,
  fields: FormField[],
  submit: string,
  intro?: Child,
): Promise<Record<string, string> | null> {
  return new Promise((resolve) => {
    const dialog = h("dialog", { class: "form", "aria-labelledby": "form-title" });
    const inputs = fields.map((f) =>
      h("input", {
        name: f.name,
        type: f.type ?? "text",
        required: f.required ?? false,
        autocomplete: f.autocomplete ?? "off",
        minlength: f.minlength,
      }),
    );
    let result: Record<string, string> | null = null;
    const form = h(
      "form",
      {
        method: "dialog",
        onsubmit: () => {
          result = Object.fromEntries(inputs.map((i) => [i.name, i.value]));
        },
      },
      h("h2", { id: "form-title" }, title),
      intro ? h("div", { class: "message" }, intro) : null,
      fields.map((f, i) => field(f.label, inputs[i]!, f.help)),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"),
        h("button", { type: "submit", class: "primary" }, submit),
      ),
    );
    dialog.append(form);
    dialog.addEventListener("close", () => {
      const values = result;
      for (const i of inputs) i.value = "";
      resolve(values);
    });
    open(dialog);
    inputs[0]?.focus();
  });
}
