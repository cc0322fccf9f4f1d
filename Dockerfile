# syntax=docker/dockerfile:1
# snapworker worker image: Node 20, the Node major CI tests (README, "Supported Node.js versions"),
# production dependencies only, native bindings (zstd, SQLite and our own fsx addon) compiled here
# for this base image, running as uid/gid 10001.
#
#   docker build -t snapworker:0.1.0 .
#   docker run --rm -e REDIS_URL=redis://redis:6379 snapworker:0.1.0            # a worker
#   docker run --rm snapworker:0.1.0 ls --repo s3://bucket/prefix --json       # any other command
#
# Pin the base by digest in your registry mirror for reproducible builds; change the major only
# together with CI (.ci/run) and package.json "engines":
#   docker build --build-arg NODE_IMAGE=node:20-slim@sha256:... .
ARG NODE_IMAGE=node:20-slim

FROM ${NODE_IMAGE} AS build
# Compilers for zstd-napi and better-sqlite3: their prebuilt binaries may be unreachable, and a
# binary built here matches the runtime stage's glibc and Node ABI exactly.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# node-gyp compiles against the headers this Node image ships instead of downloading them.
ENV npm_config_nodedir=/usr/local
# Dependencies first, so source edits do not invalidate this layer. Scripts are skipped because the
# package's own `prepare` (the build) needs sources that are not copied yet; `npm rebuild` then
# runs the install scripts that compile native bindings: the dependencies' and (npm 11 checked) the
# root package's own `node-gyp rebuild` for our addon, which is why binding.gyp and native/ come
# in with package.json. An npm whose rebuild skips the root gets the addon built by `npm run
# install` (the package's install script) instead: build/Release/fsx.node must exist either way.
COPY package.json package-lock.json binding.gyp ./
COPY native ./native
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm rebuild --foreground-scripts \
 && { test -f build/Release/fsx.node || npm run install; }
COPY tsconfig.json tsconfig.build.json ./
COPY shared ./shared
COPY jobs ./jobs
COPY worker ./worker
# The last step fails the build, not the first job, if a native binding did not compile or load.
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && node -e "require('zstd-napi'); new (require('better-sqlite3'))(':memory:').close(); require('./build/Release/fsx.node')"

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    SNAPWORKER_STAGING_DIR=/var/lib/snapworker/staging
# postgresql-client: pg_dump, pg_restore and psql for the PostgreSQL kind (docs/postgres.md). Its
# major must be at least the servers' (Debian 12: 15); for newer servers install it from the
# PostgreSQL project's apt repository instead.
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 snapworker \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin snapworker \
 && mkdir -p /var/lib/snapworker/staging \
 && chown 10001:10001 /var/lib/snapworker/staging
WORKDIR /app
# Application files stay root-owned and read-only for the worker user. package.json is needed at
# run time: it makes dist/ ESM ("type": "module") and carries the version written into manifests.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Only the compiled addon: shared/fsutil/native-fs.ts loads <package root>/build/Release/fsx.node.
COPY --from=build /app/build/Release/*.node ./build/Release/
USER 10001:10001
EXPOSE 9464
# The worker handles SIGTERM itself: it stops taking jobs and lets running ones finish within
# SNAPWORKER_SHUTDOWN_GRACE_SECONDS.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/worker/cli.js"]
CMD ["worker"]
