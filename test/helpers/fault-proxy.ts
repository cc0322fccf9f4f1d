import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * What the proxy does to a request it picks:
 * - `error500`: answers 500 InternalError; `slowdown503`: answers 503 SlowDown (S3's throttling);
 * - `reset`: destroys the connection before answering;
 * - `truncate`: forwards the request, then cuts the answer off halfway through its body (for an
 *   empty body: after the server acted, so the client never learns it succeeded);
 * - `stall`: holds the request without a byte of answer until the client gives up;
 * - `methodNotAllowed405`, `accessDenied403`: a server or an IAM policy that does not allow the
 *   operation (S3-compatible servers without AbortMultipartUpload, a policy without the action).
 */
export type FaultKind = 'error500' | 'slowdown503' | 'reset' | 'truncate' | 'stall' | 'methodNotAllowed405' | 'accessDenied403';

export interface FaultProxyOptions {
  /** Upstream base URL, e.g. s3rver's `http://127.0.0.1:port`. */
  target: string;
  /** Fraction of eligible requests that get a fault, 0 to 1. */
  faultRate: number;
  /** Faults to pick from, uniformly. Default: error500, slowdown503, reset. */
  faults?: FaultKind[];
  /** Which requests may get a fault. Default: all. */
  eligible?(req: IncomingMessage): boolean;
  /** Seed of the pseudo-random choices, so a failing run can be replayed. Default 1. */
  seed?: number;
}

export interface FaultProxy {
  /** `http://127.0.0.1:<port>`: use as the S3 endpoint. */
  endpoint: string;
  /** How many requests got each fault, and how many were forwarded untouched. */
  readonly counts: Record<FaultKind | 'forwarded', number>;
  /** Every forwarded request: method, path (with query), Range header, and the response body bytes sent back. */
  readonly requests: ProxiedRequest[];
  setFaultRate(rate: number): void;
  close(): Promise<void>;
}

export interface ProxiedRequest {
  method: string;
  path: string;
  range: string | undefined;
  responseBytes: number;
}

/** A small HTTP proxy on 127.0.0.1 that injects the failures a flaky network and a busy S3 produce. */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const upstream = new URL(options.target);
  const agent = new Agent({ keepAlive: true });
  const random = mulberry32(options.seed ?? 1);
  const faults = options.faults ?? ['error500', 'slowdown503', 'reset'];
  let faultRate = options.faultRate;
  const counts: FaultProxy['counts'] = {
    error500: 0,
    slowdown503: 0,
    reset: 0,
    truncate: 0,
    stall: 0,
    methodNotAllowed405: 0,
    accessDenied403: 0,
    forwarded: 0,
  };
  const sockets = new Set<Socket>();
  const requests: ProxiedRequest[] = [];

  const forward = (req: IncomingMessage, res: ServerResponse, truncate: boolean) => {
    const outgoing = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent },
      (answer) => {
        const logged: ProxiedRequest = { method: req.method ?? '', path: req.url ?? '', range: req.headers.range, responseBytes: 0 };
        requests.push(logged);
        answer.on('data', (chunk: Buffer) => (logged.responseBytes += chunk.length));
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        if (!truncate) return void answer.pipe(res);
        const cutAt = Math.floor(Number(answer.headers['content-length'] ?? 0) / 2);
        let sent = 0;
        if (cutAt === 0) {
          answer.resume();
          answer.once('end', () => res.socket?.destroy());
          res.flushHeaders();
          return;
        }
        answer.on('data', (chunk: Buffer) => {
          if (sent >= cutAt) return;
          const piece = chunk.subarray(0, cutAt - sent);
          sent += piece.length;
          res.write(piece);
          if (sent >= cutAt) {
            answer.destroy();
            res.socket?.destroy();
          }
        });
      },
    );
    outgoing.on('error', () => res.socket?.destroy());
    req.pipe(outgoing);
  };

  const answerError = (req: IncomingMessage, res: ServerResponse, status: number, code: string) => {
    req.resume();
    req.once('end', () => {
      const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>injected by fault proxy</Message></Error>`;
      res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(xml) });
      res.end(xml);
    });
  };

  const server = createServer((req, res) => {
    const eligible = options.eligible?.(req) ?? true;
    const fault = eligible && random() < faultRate ? faults[Math.floor(random() * faults.length)]! : undefined;
    counts[fault ?? 'forwarded']++;
    switch (fault) {
      case 'error500':
        return answerError(req, res, 500, 'InternalError');
      case 'slowdown503':
        return answerError(req, res, 503, 'SlowDown');
      case 'methodNotAllowed405':
        return answerError(req, res, 405, 'MethodNotAllowed');
      case 'accessDenied403':
        return answerError(req, res, 403, 'AccessDenied');
      case 'reset':
        return void req.socket.destroy();
      case 'stall':
        return void req.resume(); // never answered; the socket goes when the client or close() ends it
      case 'truncate':
        return forward(req, res, true);
      default:
        return forward(req, res, false);
    }
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    counts,
    requests,
    setFaultRate(rate: number) {
      faultRate = rate;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A tiny seeded PRNG (mulberry32): deterministic fault choices for a given seed. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
