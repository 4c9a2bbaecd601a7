/**
 * Windowing for a long table in the page's own scroll: of `count` rows of
 * equal height, only those on screen and `overscan` rows either side are
 * rendered; spacer rows above and below keep the full height, so the
 * scrollbar, the page's length and every row's position are those of the
 * whole table (no layout jump while scrolling or loading).
 */
import type { RefObject } from "preact";
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";

export interface VisibleRange {
  start: number;
  end: number;
  /** Measured height of one row, px (fractional). */
  rowHeight: number;
}

/** Before the first measurement: 2.75rem of 15 px, the stylesheet's --row. */
const DEFAULT_ROW_HEIGHT = 41.25;

/**
 * `body` is the tbody; its rendered rows carry the class `crow` (spacers do
 * not). The range is recomputed on scroll and resize (synchronously in the
 * event, so it is rendered before the next paint) and whenever `count`
 * changes; it only changes when the screen gets within overscan/2 rows of
 * its edge, so scrolling re-renders every ~overscan/2 rows, not every frame.
 */
export function useVisibleRange(
  body: RefObject<HTMLTableSectionElement>,
  count: number,
  overscan = 20,
): VisibleRange {
  const [range, setRange] = useState<VisibleRange>(() => ({
    start: 0,
    end: Math.min(count, 2 * overscan),
    rowHeight: DEFAULT_ROW_HEIGHT,
  }));
  const current = useRef(range);
  current.current = range;

  const measure = useCallback(() => {
    const el = body.current;
    if (!el) return;
    let h = current.current.rowHeight;
    const rendered = el.querySelectorAll<HTMLElement>(":scope > tr.crow");
    const first = rendered[0];
    const last = rendered[rendered.length - 1];
    if (first && last) {
      const span = last.getBoundingClientRect().bottom - first.getBoundingClientRect().top;
      if (span > 0) h = span / rendered.length;
    }
    const top = el.getBoundingClientRect().top;
    const firstVisible = Math.max(0, Math.floor(-top / h));
    const lastVisible = Math.max(0, Math.ceil((window.innerHeight - top) / h));
    const r = current.current;
    const margin = Math.floor(overscan / 2);
    const covered =
      r.start <= Math.max(0, firstVisible - margin) &&
      r.end >= Math.min(count, lastVisible + margin) &&
      r.end <= count &&
      Math.abs(r.rowHeight - h) < 0.01;
    if (covered) return;
    const next = {
      start: Math.min(count, Math.max(0, firstVisible - overscan)),
      end: Math.min(count, lastVisible + overscan),
      rowHeight: h,
    };
    current.current = next;
    setRange(next);
  }, [body, count, overscan]);

  // Rows added or removed (a page loaded, a new search): measured before the browser paints.
  useLayoutEffect(measure, [measure]);

  useEffect(() => {
    window.addEventListener("scroll", measure, { passive: true });
    window.addEventListener("resize", measure);
    return () => {
      window.removeEventListener("scroll", measure);
      window.removeEventListener("resize", measure);
    };
  }, [measure]);

  return { ...range, end: Math.min(range.end, count), start: Math.min(range.start, count) };
}
