/** The `code` of a Node system error (`ENOENT`, `EEXIST`, ...), or undefined for anything else. */
export function errnoCode(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * A system error's message without the path Node appends to it (a path can be kilobytes long),
 * e.g. `ENAMETOOLONG: name too long`; messages name the path themselves, shortened (`showName`).
 */
export function errorText(err: unknown): string {
  const error = err as NodeJS.ErrnoException;
  if (typeof error?.code === 'string' && typeof error.syscall === 'string') return `${error.code}: ${error.message.split(',')[0]!.replace(/^[A-Z]+: /, '')}`;
  return (err as Error)?.message ?? String(err);
}

/** True for the errors of a full disk or an exhausted quota. */
export function isNoSpaceError(err: unknown): boolean {
  const code = errnoCode(err);
  return code === 'ENOSPC' || code === 'EDQUOT';
}
