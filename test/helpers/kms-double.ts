/**
 * A test double of the AWS KMS JSON API (protocol awsJson1_1, `X-Amz-Target: TrentService.*`),
 * just Encrypt, Decrypt and DisableKey, on a free port of 127.0.0.1: no KMS-compatible local
 * server could be had from the registries here. The real `@aws-sdk/client-kms` talks to it
 * through `AWS_ENDPOINT_URL_KMS`, so the request signing, serialisation and error mapping of the
 * SDK run for real. Ciphertext: key id, then AES-256-GCM of the plaintext bound to the
 * encryption context, as KMS binds it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { aeadOpen, aeadSeal } from '../../shared/crypto/aead.js';

export interface KmsDouble {
  endpoint: string;
  /** Calls by operation name. */
  calls: string[];
  /** Makes a key unusable, as disabling or deleting it in KMS does (crypto-shredding). */
  disable(keyId: string): void;
  stop(): Promise<void>;
}

export async function startKmsDouble(keyIds: string[]): Promise<KmsDouble> {
  const keys = new Map(keyIds.map((id) => [id, randomBytes(32)]));
  const disabled = new Set<string>();
  const calls: string[] = [];
  const context = (value: unknown) => Buffer.from(JSON.stringify(Object.entries((value ?? {}) as Record<string, string>).sort()));
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const operation = String(req.headers['x-amz-target'] ?? '').replace('TrentService.', '');
      calls.push(operation);
      const fail = (type: string, message: string) => {
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': type });
        res.end(JSON.stringify({ __type: type, message }));
      };
      const answer = (body: object) => {
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify(body));
      };
      const input = JSON.parse(Buffer.concat(chunks).toString() || '{}') as Record<string, unknown>;
      const keyId = String(input.KeyId ?? '');
      if (operation === 'Encrypt') {
        const key = keys.get(keyId);
        if (!key) return fail('NotFoundException', `key ${keyId} does not exist`);
        if (disabled.has(keyId)) return fail('DisabledException', `key ${keyId} is disabled`);
        const sealed = aeadSeal(key, Buffer.from(String(input.Plaintext), 'base64'), context(input.EncryptionContext));
        const blob = Buffer.concat([Buffer.from([keyId.length]), Buffer.from(keyId), sealed]);
        return answer({ CiphertextBlob: blob.toString('base64'), KeyId: keyId, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' });
      }
      if (operation === 'Decrypt') {
        const blob = Buffer.from(String(input.CiphertextBlob), 'base64');
        const owner = blob.subarray(1, 1 + blob[0]!).toString();
        if (keyId && keyId !== owner) return fail('IncorrectKeyException', 'the ciphertext was not encrypted under this key');
        const key = keys.get(owner);
        if (!key) return fail('NotFoundException', `key ${owner} does not exist`);
        if (disabled.has(owner)) return fail('DisabledException', `key ${owner} is disabled`);
        try {
          const plaintext = aeadOpen(key, blob.subarray(1 + blob[0]!), context(input.EncryptionContext));
          return answer({ Plaintext: plaintext.toString('base64'), KeyId: owner, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' });
        } catch {
          return fail('InvalidCiphertextException', 'the ciphertext or its encryption context does not match');
        }
      }
      fail('UnsupportedOperationException', `${operation} is not in this double`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    disable: (keyId) => disabled.add(keyId),
    stop: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections(); // the SDK keeps its sockets alive
      }),
  };
}
