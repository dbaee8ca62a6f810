# syntax=docker/dockerfile:1

# ---- build: compile TypeScript to dist/ with the dev toolchain ----
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The `node` devDependency only pins Node for npm scripts on developer machines; the image
# already is Node 24, so install scripts run, but nothing from here reaches the final stage.
# npm ci installs the workspaces the lockfile names, so their manifests must be here (the
# subscriber package is not part of the service: its sources stay out of the image).
COPY packages/events/package.json ./packages/events/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json

# ---- deps: production dependencies only (bcrypt ships prebuilt binaries) ----
FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/events/package.json ./packages/events/
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- runtime: no compiler, no dev dependencies, no sources, no secrets, not root ----
FROM node:24-slim AS runtime
# V8 sizes its heap from the machine's memory and, under load, keeps far more than the live
# set (measured: ~370 MB RSS at ~1,400 VerifyToken/s, ~40 MB of it live). These bounds keep
# the process near 160 MB at the same rate with no loss of throughput (bench/ uses them too);
# raise them with NODE_OPTIONS for a larger container.
# One libuv pool thread: under load, token signatures are checked there (SignatureLoad), and
# one thread keeps up with the event loop, which spends more per uncached call than the
# signature costs. Node's default four contend with the loop for the cores: on 2 cores the
# uncached VerifyToken rate rose from 5,900/s to 8,600/s with one (back-to-back h2load runs of the same build).
# One V8 platform thread (--v8-pool-size=1) for the same reason: Node's four run the garbage
# collector's parallel work, and on 2 cores they contended with the event loop, whose own
# garbage collection is a quarter of a cached call; cached VerifyToken and Check rose by about
# 12 % with one (eight alternating h2load runs of each setting, same build). RefreshToken, far
# rarer, loses about as much (closed loops of 16: 29-30 % of a bare transaction against 33-36 %).
ENV NODE_ENV=production \
    NODE_OPTIONS="--max-old-space-size=96 --max-semi-space-size=8 --v8-pool-size=1" \
    UV_THREADPOOL_SIZE=1 \
    PORT=50051 \
    ADMIN_PORT=9464 \
    DATA_DIR=/app/data
WORKDIR /app
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
COPY --chown=root:root package.json ./
COPY --chown=root:root bin ./bin
# The embedded development database writes here; production sets DATABASE_URL instead.
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 50051 50052 9464
# /healthz on the admin port; node's own fetch, since the slim image has no curl.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.ADMIN_PORT||9464)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Exec form: Node is PID 1 and receives SIGTERM itself, so shutdown is graceful.
ENTRYPOINT ["node", "dist/main.js"]
CMD ["serve"]
