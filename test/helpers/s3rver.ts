import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The part of s3rver's (untyped) in-process API these tests use. */
interface S3rverServer {
  middleware: Array<(ctx: KoaContext, next: () => Promise<void>) => Promise<void>>;
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
interface KoaContext {
  method: string;
  path: string;
  query: Record<string, string | undefined>;
  status: number;
  body: unknown;
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverServer;

const S3rver = createRequire(import.meta.url)('s3rver') as S3rverConstructor;

export interface S3rverHandle {
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  bucket: string;
  /** Where s3rver keeps its files. */
  directory: string;
  stop(): Promise<void>;
}

/**
 * Starts s3rver in-process on a free port of 127.0.0.1, in a fresh temp directory, with one
 * bucket; `stop` closes it and removes the directory.
 *
 * Also points the AWS SDK's default credential chain at s3rver's fixed account (env variables,
 * as a deployment would) unless credentials are already set.
 *
 * s3rver 3.7.1 implements multipart uploads but not AbortMultipartUpload (it answers 405) nor
 * ListMultipartUploads (501). Both are added here, over s3rver's own upload files, so that the
 * driver's abort path runs for real and tests can ask, as any S3 client would, which uploads are
 * still open.
 */
export async function startS3rver(bucket = 'test'): Promise<S3rverHandle> {
  process.env.AWS_ACCESS_KEY_ID ??= 'S3RVER';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'S3RVER';
  const directory = await mkdtemp(join(tmpdir(), 'snapworker-s3rver-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: bucket }] });
  // After s3rver's logger, XML encoder and mount shim; before its vhost and router middleware.
  server.middleware.splice(3, 0, multipartGapsMiddleware(directory));
  const address = await server.run();
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    bucket,
    directory,
    async stop() {
      try {
        await server.close();
      } finally {
        await rm(directory, { recursive: true, force: true });
      }
    },
  };
}

/** s3rver's layout: `<dir>/<bucket>/._S3rver_uploads/<uploadId>/{key,metadata,<part>}`. */
function uploadsDir(directory: string, bucket: string): string {
  return join(directory, bucket, '._S3rver_uploads');
}

function multipartGapsMiddleware(directory: string) {
  return async (ctx: KoaContext, next: () => Promise<void>): Promise<void> => {
    const [bucket, ...keyParts] = ctx.path.replace(/^\//, '').split('/').filter(Boolean);
    if (!bucket) return next();
    if (ctx.method === 'DELETE' && keyParts.length > 0 && ctx.query.uploadId !== undefined) {
      const dir = join(uploadsDir(directory, bucket), ctx.query.uploadId.replace(/[^0-9a-f]/gi, ''));
      const exists = await readdir(dir).then(() => true, () => false);
      if (!exists) {
        ctx.status = 404;
        ctx.body = { Error: { Code: 'NoSuchUpload', Message: 'The specified upload does not exist.' } };
        return;
      }
      await rm(dir, { recursive: true, force: true });
      ctx.status = 204;
      ctx.body = '';
      return;
    }
    if (ctx.method === 'GET' && keyParts.length === 0 && ctx.query.uploads !== undefined) {
      const prefix = ctx.query.prefix ?? '';
      const ids = await readdir(uploadsDir(directory, bucket)).catch(() => [] as string[]);
      const uploads = [];
      for (const id of ids) {
        const key = await readFile(join(uploadsDir(directory, bucket), id, 'key'), 'utf8').catch(() => undefined);
        if (key !== undefined && key.startsWith(prefix)) uploads.push({ Key: key, UploadId: id });
      }
      ctx.body = { ListMultipartUploadsResult: { Bucket: bucket, Prefix: prefix, IsTruncated: false, Upload: uploads } };
      return;
    }
    return next();
  };
}
