// The inspector's files by URL path, with their content types and the page's security policy.
import { PAGE_CSS } from "./page_css.ts";
import { PAGE_HTML } from "./page_html.ts";
import { INSPECTOR_JS } from "./inspector_js.ts";

// Only Berth's own files may load; the drawings carry an inline <style>.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
  "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; " +
  "frame-ancestors 'none'";

export type Asset = { body: string; headers: Record<string, string> };

export const PAGE_ASSETS: ReadonlyMap<string, Asset> = new Map([
  ["/", {
    body: PAGE_HTML,
    headers: { "content-type": "text/html; charset=utf-8", "content-security-policy": CSP },
  }],
  ["/assets/inspector.js", {
    body: INSPECTOR_JS,
    headers: { "content-type": "text/javascript; charset=utf-8" },
  }],
  ["/assets/inspector.css", {
    body: PAGE_CSS,
    headers: { "content-type": "text/css; charset=utf-8" },
  }],
]);
