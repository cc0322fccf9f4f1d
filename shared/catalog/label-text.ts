/**
 * Labels as text for people and group names: `key=value` pairs joined by commas, in the order
 * given. A key or value that would read ambiguously (empty, or holding a comma, whitespace, a
 * double quote, a backslash or a control character; for a key also `=`) is written as a JSON
 * string (`app="a,b"`), so `{ app: 'a,b' }` never looks like `{ app: 'a', b: … }` and two
 * different label sets never print alike. JSON output keeps labels as objects and is unaffected.
 */
export function formatLabels(labels: Readonly<Record<string, string>>, keys: readonly string[] = Object.keys(labels)): string {
  return keys.map((key) => formatLabel(key, labels[key]!)).join(',');
}

/** One `key=value` pair, each side quoted only when needed (see `formatLabels`). */
export function formatLabel(key: string, value: string): string {
  return `${quoted(key, /[=]/)}=${quoted(value)}`;
}

function quoted(text: string, alsoQuote?: RegExp): string {
  // eslint-disable-next-line no-control-regex
  const ambiguous = text === '' || /[,"\\\s\u0000-\u001f\u007f]/.test(text) || (alsoQuote?.test(text) ?? false);
  return ambiguous ? JSON.stringify(text) : text;
}
