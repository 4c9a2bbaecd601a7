/**
 * The view lives in the URL hash (`#/contacts?search=ann&label=lbl_…`), so a
 * view can be reloaded, bookmarked or shared, and the server only ever serves `/`.
 */
import { useEffect, useState } from "preact/hooks";

export interface Route {
  /** Path segments after `#/`: ["contacts"], ["contacts", "ctc_…"], ["labels"], ["import"]. */
  path: string[];
  params: URLSearchParams;
}

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#\/?/, "");
  const [pathPart = "", queryPart = ""] = raw.split("?", 2);
  const path = pathPart.split("/").filter(Boolean).map(decodeURIComponent);
  return { path: path.length > 0 ? path : ["contacts"], params: new URLSearchParams(queryPart) };
}

export function hrefOf(path: string[], params?: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params ?? {})) if (v) q.set(k, v);
  const s = q.toString();
  return `#/${path.map(encodeURIComponent).join("/")}${s ? `?${s}` : ""}`;
}

/** Changes the URL without a new history entry (typing in the search box). */
export function replaceRoute(href: string): void {
  history.replaceState(null, "", href);
  window.dispatchEvent(new HashChangeEvent("hashchange"));
}

export function navigate(href: string): void {
  location.hash = href.replace(/^#/, "");
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseHash(location.hash));
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}

/** The contacts view last shown (with its filters), for the way back from a contact. */
let listHref = "#/contacts";
export function rememberListHref(href: string): void {
  listHref = href;
}
export function lastListHref(): string {
  return listHref;
}
