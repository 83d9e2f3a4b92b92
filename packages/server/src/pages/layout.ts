import type { FastifyReply } from "fastify";

/** Escapes text for HTML element content and double-quoted attribute values. */
export function escapeHtml(value: string): string {
  return value
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

// Self-contained: no external fonts, scripts or images. Colours meet WCAG AA contrast
// (text #1a1a1a on #fff is 17:1, white on #1d5c2e is 7.9:1, error #8a1c1c on #fdecec 7.4:1),
// and focus is always visible for keyboard users.
const STYLE = `
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a1a1a;background:#f3f5f2}
main{max-width:26rem;margin:3rem auto;padding:2rem;background:#fff;border:1px solid #c9d1c6;border-radius:8px}
h1{font-size:1.5rem;margin:0 0 1rem}
p{margin:0 0 1rem}
label{display:block;font-weight:600;margin:0 0 .25rem}
input[type=text],input[type=password]{display:block;width:100%;padding:.6rem;margin:0 0 1rem;font:inherit;border:1px solid #5f6b5c;border-radius:4px;color:#1a1a1a;background:#fff}
button{font:inherit;font-weight:600;padding:.6rem 1.2rem;border-radius:4px;border:2px solid #1d5c2e;cursor:pointer}
button.primary{background:#1d5c2e;color:#fff}
button.secondary{background:#fff;color:#1d5c2e}
:focus-visible{outline:3px solid #0b57d0;outline-offset:2px}
.actions{display:flex;gap:.75rem;flex-wrap:wrap}
.error{background:#fdecec;color:#8a1c1c;border:1px solid #8a1c1c;border-radius:4px;padding:.6rem;margin:0 0 1rem}
.app{font-weight:700}
ul{margin:0 0 1.25rem;padding-left:1.25rem}
.check{display:flex;gap:.5rem;align-items:flex-start;margin:0 0 1rem;font-weight:400}
.muted{color:#4a5348;font-size:.9rem}
`;

/** A complete, self-contained HTML page. */
export function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)} · Evergreen</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>`;
}

/**
 * Sends a page with headers that keep it out of caches and frames (a consent page in a hidden
 * frame could be clicked through) and forbid any script or external resource.
 */
export function sendPage(reply: FastifyReply, status: number, html: string): FastifyReply {
  return reply
    .code(status)
    .header("Content-Type", "text/html; charset=utf-8")
    .header("Cache-Control", "no-store")
    .header("Pragma", "no-cache")
    .header("X-Frame-Options", "DENY")
    .header("Referrer-Policy", "no-referrer")
    .header(
      "Content-Security-Policy",
      "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
    )
    .send(html);
}
