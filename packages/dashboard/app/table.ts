import { ApiError } from "./api.ts";
import { type Child, h, replace } from "./dom.ts";

export interface Column<T> {
  label: string;
  cell: (row: T) => Child;
}

/** A table; on a narrow screen each row becomes a card, each cell labelled by its column. */
export function dataTable<T>(
  caption: string,
  columns: Column<T>[],
  rows: T[],
  empty = "Nothing here.",
): HTMLElement {
  if (rows.length === 0) return h("p", { class: "empty" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      null,
      h("caption", { class: "visually-hidden" }, caption),
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          columns.map((c) => h("th", { scope: "col" }, c.label)),
        ),
      ),
      h(
        "tbody",
        null,
        rows.map((r) =>
          h(
            "tr",
            null,
            columns.map((c) => h("td", { "data-label": c.label }, c.cell(r))),
          ),
        ),
      ),
    ),
  );
}

/** One page of a listing and where the next one starts (null: this is the last). */
export interface Page<T> {
  rows: T[];
  next: string | null;
}

export const PAGE_SIZE = 25;

/** Offset paging over an API that takes limit/offset: the cursor is the offset. */
export async function offsetPage<T>(
  cursor: string | null,
  fetchPage: (offset: number, limit: number) => Promise<T[]>,
): Promise<Page<T>> {
  const offset = Number(cursor ?? 0);
  const rows = await fetchPage(offset, PAGE_SIZE);
  return { rows, next: rows.length === PAGE_SIZE ? String(offset + PAGE_SIZE) : null };
}

/** An error as the page shows it. */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  return err instanceof Error ? err.message : String(err);
}

/**
 * A listing loaded one page at a time, with Previous / Next: nothing ever loads a whole
 * table. `reload()` starts again from the first page (after a search or a change).
 */
export function pagedList<T>(options: {
  caption: string;
  columns: Column<T>[];
  load: (cursor: string | null) => Promise<Page<T>>;
  empty?: string;
}): { element: HTMLElement; reload(): void; refresh(): void } {
  const body = h("div", { "aria-live": "polite" });
  const status = h("p", { class: "error", role: "alert" });
  const prev = h("button", { type: "button" }, "← Previous");
  const next = h("button", { type: "button" }, "Next →");
  const where = h("span", { class: "muted" });
  const history: (string | null)[] = [];
  let cursor: string | null = null;
  let nextCursor: string | null = null;

  async function show(c: string | null) {
    status.textContent = "";
    try {
      const page = await options.load(c);
      cursor = c;
      nextCursor = page.next;
      replace(body, dataTable(options.caption, options.columns, page.rows, options.empty));
      prev.disabled = history.length === 0;
      next.disabled = page.next === null;
      where.textContent = `page ${history.length + 1}`;
    } catch (err) {
      status.textContent = errorText(err);
    }
  }
  prev.addEventListener("click", () => {
    if (history.length > 0) void show(history.pop()!);
  });
  next.addEventListener("click", () => {
    if (nextCursor !== null) {
      history.push(cursor);
      void show(nextCursor);
    }
  });
  void show(null);
  return {
    element: h(
      "div",
      { class: "paged" },
      status,
      body,
      h("nav", { class: "pager", "aria-label": `${options.caption} pages` }, prev, where, next),
    ),
    reload() {
      history.length = 0;
      void show(null);
    },
    refresh() {
      void show(cursor);
    },
  };
}

/** A search/filter bar: a form whose submit re-runs the listing. */
export function filterBar(label: string, controls: HTMLElement[], onSubmit: () => void): HTMLElement {
  return h(
    "form",
    {
      class: "filters",
      role: "search",
      "aria-label": label,
      onsubmit: (e: Event) => {
        e.preventDefault();
        onSubmit();
      },
    },
    controls,
    h("button", { type: "submit" }, "Search"),
  );
}
