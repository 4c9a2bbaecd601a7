/** CSV injection (OWASP): what the export writes and the import reads back. */

/**
 * A cell a spreadsheet would run as a formula: one starting with `=`, `+`,
 * `-`, `@`, a tab or a carriage return (OWASP, CSV injection), after any
 * quotes already neutralising it.
 */
const FORMULA_START = /^'*[=+\-@\t\r]/;

/**
 * OWASP's advice for CSV injection: such a cell is prefixed with `'`, which
 * spreadsheets show as text. Cells already starting with quotes before such a
 * character get one more, so the import (which removes exactly one, see
 * `unneutralizeCell`) restores every value exactly.
 */
export function neutralizeCell(value: string): string {
  return FORMULA_START.test(value) ? `'${value}` : value;
}

/** The inverse of `neutralizeCell`, applied to every cell of an imported CSV. */
export function unneutralizeCell(value: string): string {
  return value.startsWith("'") && FORMULA_START.test(value) ? value.slice(1) : value;
}
