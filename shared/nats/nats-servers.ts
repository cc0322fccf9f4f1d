import { InvalidInputError } from '../errors.js';
import { ANY_SERVER, serverAddress } from '../kinds/server-policy.js';
import { redactUrl } from '../redact-url.js';

/** Port a `nats://` URI without one points at, as every NATS client assumes. */
export const DEFAULT_NATS_PORT = 4222;

/** Server list and credentials taken from a NATS URL such as `nats://user:pass@host:4222`. */
export interface NatsServerLogin {
  /** `scheme://host:port` per server, without credentials: what the client is given. */
  servers: string[];
  user?: string;
  pass?: string;
  token?: string;
}

const SCHEMES = new Set(['nats:', 'tls:', 'ws:', 'wss:']);

/**
 * Splits a comma-separated NATS URL list (`NATS_URL`) into servers and credentials. The nats.js
 * v3 client ignores user info in server URLs, so `user:pass@` and `token@` must be passed as the
 * `user`/`pass`/`token` connection options; this is where they are moved there.
 *
 * @throws InvalidInputError (message redacted) for a URL that does not parse, another scheme,
 *   or servers of one list carrying different credentials.
 */
export function parseNatsServerUrls(text: string): NatsServerLogin {
  const login: NatsServerLogin = { servers: [] };
  let credentials: string | undefined;
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    let url: URL;
    try {
      url = new URL(part);
    } catch {
      throw new InvalidInputError(`${redactUrl(part)} is not a URL (expected nats://[user:pass@]host:port)`);
    }
    if (!SCHEMES.has(url.protocol)) throw new InvalidInputError(`${redactUrl(part)}: must start with nats://, tls://, ws:// or wss://`);
    if (url.hostname === '') throw new InvalidInputError(`${redactUrl(part)}: a host is required`);
    const userInfo = `${url.username}:${url.password}`;
    if (credentials !== undefined && credentials !== userInfo) {
      throw new InvalidInputError(`${redactUrl(text)}: every server in the list must carry the same credentials`);
    }
    credentials = userInfo;
    login.servers.push(`${url.protocol}//${url.host}`);
    // `nats://token@host` is a token; `nats://user:pass@host` a user and password, as nats-server reads them.
    if (url.username !== '' && url.password === '') login.token = decodeURIComponent(url.username);
    else if (url.username !== '') {
      login.user = decodeURIComponent(url.username);
      login.pass = decodeURIComponent(url.password);
    }
  }
  if (login.servers.length === 0) throw new InvalidInputError('no server given');
  return login;
}

/** `host:port` of a server given as `host`, `host:port` or `nats://host:port`, lower case, default port 4222. */
export function natsServerAddress(text: string): string {
  return serverAddress(text, DEFAULT_NATS_PORT);
}

/** Allow-list value that lets jobs name any NATS server (in-process CLI runs, tests). */
export const ANY_NATS_SERVER = ANY_SERVER;
