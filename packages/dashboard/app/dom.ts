/** A tiny DOM builder: the app renders with real elements, never with HTML strings. */
export type Child = Node | string | number | null | undefined | false | Child[];
type Handler = (event: Event) => void;
export type Props = Record<string, string | number | boolean | null | undefined | Handler>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props | null = null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === "function") el.addEventListener(key.slice(2).toLowerCase(), value);
    else if (key === "value" && "value" in el) (el as HTMLInputElement).value = String(value);
    else if (key === "checked" && el instanceof HTMLInputElement) el.checked = value === true;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(parent: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(parent, c);
    else parent.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
  }
}

/** Replaces an element's content. */
export function replace(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, children);
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

/** A timestamp for people: local date and time (— when absent). */
export function when(value: string | null | undefined): string {
  if (!value) return "—";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? "—" : dateFormat.format(d);
}

/** "in 4 min", "2 h ago": how far a moment is from now. */
export function relative(value: string | null | undefined, now = Date.now()): string {
  if (!value) return "";
  const diff = new Date(value).getTime() - now;
  const abs = Math.abs(diff) / 1000;
  const unit =
    abs < 90
      ? `${Math.round(abs)} s`
      : abs < 5400
        ? `${Math.round(abs / 60)} min`
        : abs < 172800
          ? `${Math.round(abs / 3600)} h`
          : `${Math.round(abs / 86400)} days`;
  return diff >= 0 ? `in ${unit}` : `${unit} ago`;
}

/** A time element with the local time, the distance from now, and the exact instant as its datetime. */
export function timeCell(value: string | null | undefined): Child {
  if (!value) return "—";
  return h(
    "time",
    { datetime: value, title: value },
    when(value),
    h("span", { class: "muted" }, ` (${relative(value)})`),
  );
}

/** Seconds as people say them: "10 min", "14 days". */
export function duration(seconds: number): string {
  if (seconds % 86400 === 0) return `${seconds / 86400} day${seconds === 86400 ? "" : "s"}`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

let ids = 0;
/** A fresh element id (labels point at their inputs). */
export function uid(prefix: string): string {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** A labelled form field; `help` explains it inline. */
export function field(label: string, input: HTMLElement, help?: Child): HTMLElement {
  const id = input.id || uid("f");
  input.id = id;
  const helpId = help ? `${id}-help` : undefined;
  if (helpId) input.setAttribute("aria-describedby", helpId);
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    input,
    help ? h("p", { class: "help", id: helpId }, help) : null,
  );
}

/** A status pill. */
export function pill(text: string, tone: "ok" | "warn" | "bad" | "muted" = "muted"): HTMLElement {
  return h("span", { class: `pill ${tone}` }, text);
}
