import { InvalidInputError } from '../errors.js';

/** Allow-list entry that lets jobs name any server (in-process CLI runs, tests). */
export const ANY_SERVER = '*';

/**
 * `host:port` of a server given as `host`, `host:port` or `scheme://host:port`, host in lower
 * case, `defaultPort` when none is given. IPv6 addresses keep their brackets (`[::1]:5432`).
 * @throws TypeError when `text` is no host.
 */
export function serverAddress(text: string, defaultPort: number): string {
  const url = new URL(text.includes('://') ? text : `server://${text}`);
  if (url.hostname === '') throw new TypeError(`${text}: no host`);
  return `${url.hostname.toLowerCase()}:${url.port === '' ? defaultPort : url.port}`;
}

/**
 * The servers jobs may name in the URIs of one kind (`SNAPWORKER_<KIND>_ALLOWED_SERVERS`),
 * compared as `host:port` without resolving names. Like allowed paths and repositories, this is
 * worker configuration: without it a job could make the worker connect anywhere it can reach
 * (a cloud metadata address, an internal service).
 */
export class ServerPolicy {
  private readonly allowed: ReadonlySet<string> | undefined;

  /**
   * @param kind the kind, for messages (`nats`, `postgres`).
   * @param variable the setting the list comes from, named in refusals.
   * @param servers entries for `serverAddress`, or `['*']` for any server.
   */
  constructor(
    private readonly kind: string,
    private readonly variable: string,
    private readonly defaultPort: number,
    servers: readonly string[],
  ) {
    this.allowed = servers.includes(ANY_SERVER) ? undefined : new Set(servers.map((server) => serverAddress(server, defaultPort)));
  }

  /** @throws InvalidInputError (never retried) naming the server and the setting, before any connection. */
  check(server: string, role: 'source' | 'target'): void {
    if (this.allowed === undefined || this.allowed.has(serverAddress(server, this.defaultPort))) return;
    throw new InvalidInputError(
      `${this.kind}: ${role} server ${server} is not one of the allowed servers (${[...this.allowed].join(', ')}); see ${this.variable}`,
    );
  }
}
