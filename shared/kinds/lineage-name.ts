/**
 * The lineage name a source derives when the job gives none (a directory's or database's base
 * name, a stream name), made to follow the job schema's rule for names
 * (`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`, `jobs/schemas.ts`), so that `latest --source NAME` and
 * `--name NAME` can always name what a snapshot recorded: other characters become `-`, leading
 * characters that are not a letter or digit are dropped (`my app` → `my-app`, `café` → `caf-`,
 * `.hidden` → `hidden`), and an empty result is `fallback`.
 */
export function lineageNameFrom(raw: string, fallback: string): string {
  const name = raw
    .replace(/[^A-Za-z0-9_.-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 128);
  return name || fallback;
}
