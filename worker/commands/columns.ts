/**
 * Rows as aligned text columns for the listing commands: each column as wide as its widest cell
 * (header included), two spaces between columns, no trailing spaces. Columns whose index is in
 * `rightAligned` (sizes, counts) are padded on the left, the others on the right.
 * @returns one string per row, the header first, without newlines.
 */
export function formatColumns(header: readonly string[], rows: readonly (readonly string[])[], rightAligned: ReadonlySet<number> = new Set()): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  return [header, ...rows].map((cells) =>
    cells
      .map((cell, i) => (rightAligned.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}
