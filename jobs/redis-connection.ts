import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { ConnectionOptions } from 'bullmq';
import { InvalidInputError } from '../shared/errors.js';
import { redactUrl } from '../shared/redact-url.js';

/**
 * Where the queue's Redis is, parsed from one URL so a single secret holds it all:
 *
 * - `redis://[user:pass@]host:port[/db]`, `rediss://…` (TLS): one server.
 * - `redis+cluster://[user:pass@]host:port,host:port,…`, `rediss+cluster://…`: seed nodes of a
 *   Redis Cluster; the rest of the cluster is discovered from them.
 * - `redis+sentinel://[user:pass@]host:port,host:port,…/<master>[/db]`, `rediss+sentinel://…`:
 *   Sentinels and the name of the master they watch. `user:pass` are the data nodes' ACL user;
 *   the Sentinels' own, when they have one, go in `?sentinelUsername=…&sentinelPassword=…`.
 *
 * The ports default to 6379 (26379 for Sentinels). TLS uses the system's trust store.
 */
export type RedisSettings =
  | { mode: 'standalone'; url: string }
  | { mode: 'cluster'; nodes: RedisNode[]; auth: Auth; tls: boolean }
  | { mode: 'sentinel'; sentinels: RedisNode[]; master: string; db: number; auth: Auth; sentinelAuth: Auth; tls: boolean };

/** A server's address. */
export interface RedisNode {
  host: string;
  port: number;
}

interface Auth {
  username?: string;
  password?: string;
}

/** The URL schemes `parseRedisUrl` accepts. */
export const REDIS_URL_SCHEMES = ['redis', 'rediss', 'redis+cluster', 'rediss+cluster', 'redis+sentinel', 'rediss+sentinel'];

/**
 * Parses a Redis URL of the forms listed at `RedisSettings`.
 * @throws InvalidInputError with one line saying what is wrong; the URL in it has its password masked.
 */
export function parseRedisUrl(text: string): RedisSettings {
  const parsed = parse(text);
  if (typeof parsed === 'string') throw new InvalidInputError(`redis ${redactUrl(text)}: ${parsed}`);
  return parsed;
}

/** Why `text` is not a Redis URL `parseRedisUrl` accepts, in a few words; undefined when it is one. */
export function redisUrlProblem(text: string): string | undefined {
  const parsed = parse(text);
  return typeof parsed === 'string' ? parsed : undefined;
}

/** The settings, or why there are none. */
function parse(text: string): RedisSettings | string {
  const match = /^([a-z+]+):\/\/(?:([^@/?#]*)@)?([^/?#]*)(\/[^?#]*)?(?:\?([^#]*))?$/i.exec(text.trim());
  // Thrown inside, caught below: parseNode reports from deep in a map.
  const fail = (why: string): never => {
    throw new UrlProblem(why);
  };
  try {
    return parseMatch(match, fail);
  } catch (err) {
    if (err instanceof UrlProblem) return err.message;
    if (err instanceof URIError) return 'bad percent-encoding in the user, password or master name';
    throw err;
  }
}

class UrlProblem extends Error {}

function parseMatch(match: RegExpExecArray | null, fail: (why: string) => never): RedisSettings {
  if (!match) return fail(`not a URL (expected ${REDIS_URL_SCHEMES.map((s) => s + '://').join(', ')})`);
  const [, scheme = '', userInfo, hosts = '', pathPart = '', query = ''] = match;
  const lower = scheme.toLowerCase();
  if (!REDIS_URL_SCHEMES.includes(lower)) return fail(`scheme must be one of ${REDIS_URL_SCHEMES.map((s) => s + '://').join(', ')}`);
  const [base, mode = 'standalone'] = lower.split('+') as [string, 'cluster' | 'sentinel' | undefined];
  const tls = base === 'rediss';
  const auth = parseUserInfo(userInfo);
  const defaultPort = mode === 'sentinel' ? 26379 : 6379;
  const nodes = hosts.split(',').map((h) => h.trim()).filter(Boolean).map((h) => parseNode(h, defaultPort, fail));

  if (mode === 'standalone') {
    if (nodes.length !== 1) return fail('a redis:// URL names exactly one server; use redis+cluster:// for a cluster or redis+sentinel:// for Sentinels');
    if (pathPart.length > 1 && !/^\/\d+$/.test(pathPart)) return fail('the path must be a database number such as /0');
    return { mode, url: match[0] };
  }
  if (nodes.length === 0) return fail(`no ${mode === 'cluster' ? 'seed nodes' : 'Sentinels'} (host:port,host:port,…)`);
  if (mode === 'cluster') {
    // Redis Cluster has only database 0 (SELECT is refused).
    if (pathPart.length > 1 && pathPart !== '/0') return fail('a Redis Cluster has only database 0');
    return { mode, nodes, auth, tls };
  }
  const [master, db = '0', ...rest] = pathPart.split('/').slice(1).map(decodeURIComponent);
  if (!master) return fail('no master name: redis+sentinel://host:26379,…/<master>');
  if (rest.length > 0 || !/^\d+$/.test(db)) return fail('the path must be /<master> or /<master>/<db>');
  const params = new URLSearchParams(query);
  const sentinelAuth: Auth = {
    ...(params.get('sentinelUsername') ? { username: params.get('sentinelUsername')! } : {}),
    ...(params.get('sentinelPassword') ? { password: params.get('sentinelPassword')! } : {}),
  };
  return { mode, sentinels: nodes, master, db: Number(db), auth, sentinelAuth, tls };
}

/**
 * The BullMQ connection for a Redis URL (see `RedisSettings`) or ioredis options / instances,
 * passed through unchanged. A standalone or Sentinel URL becomes ioredis options (BullMQ opens and
 * closes its own connections); a cluster URL becomes a new ioredis `Cluster` each call, because
 * BullMQ takes a cluster only as an instance. BullMQ never closes an instance it was given: the
 * caller closes it after the Queue or Worker using it (`closeConnection`).
 * @throws InvalidInputError when the URL is not one of the accepted forms.
 */
export function toConnection(connection: string | ConnectionOptions): ConnectionOptions {
  if (typeof connection !== 'string') return connection;
  const settings = parseRedisUrl(connection);
  if (settings.mode === 'standalone') return standaloneOptions(settings.url);
  if (settings.mode === 'sentinel') {
    return {
      sentinels: settings.sentinels,
      name: settings.master,
      db: settings.db,
      ...settings.auth,
      ...(settings.sentinelAuth.username ? { sentinelUsername: settings.sentinelAuth.username } : {}),
      ...(settings.sentinelAuth.password ? { sentinelPassword: settings.sentinelAuth.password } : {}),
      ...(settings.tls ? { tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true } : {}),
    };
  }
  return clusterClient(settings);
}

/** An ioredis Cluster for the seed nodes, each connection made with `extra` options. */
function clusterClient(settings: Extract<RedisSettings, { mode: 'cluster' }>, extra: RedisOptions = {}): Cluster {
  return new Cluster(settings.nodes, {
    redisOptions: { ...settings.auth, ...(settings.tls ? { tls: {} } : {}), ...extra },
    ...(extra.lazyConnect ? { lazyConnect: true } : {}),
  });
}

/** Closes a connection `toConnection` created as an instance (a cluster); options need nothing. Never throws. */
export async function closeConnection(connection: ConnectionOptions): Promise<void> {
  if (connection instanceof Cluster || connection instanceof Redis) {
    await connection.quit().catch(() => connection.disconnect());
  }
}

/** True when the URL is a `redis+cluster://` or `rediss+cluster://` one. */
export function isClusterUrl(url: string): boolean {
  return /^rediss?\+cluster:\/\//i.test(url.trim());
}

/**
 * Why a key prefix cannot be used on a Redis Cluster, or undefined when it can. BullMQ runs Lua
 * scripts over several keys of a queue at once, and a cluster runs such a script only when all
 * its keys hash to one slot: that holds only when the prefix carries a hash tag, a non-empty
 * `{…}` (Redis hashes the text between the first `{` and the next `}` instead of the whole key).
 */
export function clusterPrefixProblem(prefix: string): string | undefined {
  const open = prefix.indexOf('{');
  const close = open < 0 ? -1 : prefix.indexOf('}', open + 1);
  if (open >= 0 && close > open + 1) return undefined;
  return `on a Redis Cluster the prefix needs a hash tag such as {snapworker}, so that all of a queue's keys live in one slot (BullMQ's scripts touch several keys at once and a cluster refuses that across slots: CROSSSLOT)`;
}

/** ioredis options for one server: BullMQ takes options, not URLs. */
function standaloneOptions(text: string): RedisOptions {
  const url = new URL(text);
  return {
    host: url.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: url.port ? Number(url.port) : 6379,
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(url.pathname.length > 1 ? { db: Number(url.pathname.slice(1)) } : {}),
    ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

function parseUserInfo(userInfo: string | undefined): Auth {
  if (!userInfo) return {};
  const colon = userInfo.indexOf(':');
  const username = decodeURIComponent(colon < 0 ? userInfo : userInfo.slice(0, colon));
  const password = colon < 0 ? '' : decodeURIComponent(userInfo.slice(colon + 1));
  // As in `redis://` URLs: `:secret@` is a password alone (requirepass), `user:secret@` an ACL user.
  return { ...(username ? { username } : {}), ...(password ? { password } : {}) };
}

function parseNode(text: string, defaultPort: number, fail: (why: string) => never): RedisNode {
  const match = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/i.exec(text);
  const port = match?.[2] === undefined ? defaultPort : Number(match[2]);
  if (!match || port < 1 || port > 65535) return fail(`${JSON.stringify(text)} is not host:port`);
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
}

/**
 * Checks that the server behind a connection is the kind its URL says, so a wrong URL fails once
 * at start with a line saying what to change, instead of every command failing forever: a
 * `redis://` URL naming one node of a cluster answers `MOVED` to each key on another node, and a
 * worker would retry that thousands of times a second. Reads `redis_mode` from `INFO server`
 * (standalone, cluster or sentinel; a Sentinel URL is answered by the master, standalone).
 * @throws InvalidInputError naming the URL (password masked) and the form to use.
 */
export async function checkServerMode(client: { info(section: string): Promise<string> }, url: string): Promise<void> {
  const mode = /^redis_mode:(\w+)/m.exec(await client.info('server'))?.[1] ?? 'standalone';
  const expected = isClusterUrl(url) ? 'cluster' : 'standalone';
  if (mode === expected) return;
  const shown = redactUrl(url);
  if (mode === 'cluster') {
    throw new InvalidInputError(`redis ${shown}: this server is a node of a Redis Cluster; connect with redis+cluster://host:port,host:port,… (a single-server connection gets MOVED for every key another node owns)`);
  }
  if (mode === 'sentinel') {
    throw new InvalidInputError(`redis ${shown}: this server is a Sentinel, not a data node; connect with redis+sentinel://host:port,…/<master>`);
  }
  throw new InvalidInputError(`redis ${shown}: this server is not a Redis Cluster node (redis_mode:${mode}); connect with redis:// or rediss://`);
}

/**
 * A plain ioredis client (not for BullMQ) for the server or cluster a URL names, with `extra`
 * options for each connection: for side channels such as a pub/sub subscriber. The caller closes it.
 * @throws InvalidInputError when the URL is not one of the accepted forms.
 */
export function createRedisClient(url: string, extra: RedisOptions = {}): Redis | Cluster {
  const settings = parseRedisUrl(url);
  if (settings.mode === 'cluster') return clusterClient(settings, extra);
  return new Redis({ ...(toConnection(url) as RedisOptions), ...extra });
}
