/**
 * A URL fit for a log line or a message: user and password replaced by `***`, everything else
 * kept (host, port, path, query) so an operator can still tell which server is meant. Text that
 * does not parse as a URL is returned with anything before an `@` masked, so a malformed URL with
 * credentials still does not leak them.
 */
export function redactUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return text.replace(/\/\/[^/@]*@/, '//***@');
  }
  if (!url.username && !url.password) return text;
  url.username = url.username ? '***' : '';
  url.password = url.password ? '***' : '';
  return url.href;
}
