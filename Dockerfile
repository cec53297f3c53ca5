# syntax=docker/dockerfile:1
#
# extendql image: a build stage with every dependency generates the code the server needs
# (src/generated: the Prisma client and its Pothos types) and builds the studio (web/dist); the
# runtime stage installs production dependencies only and runs as the unprivileged `node` user.
#
# scripts/check-production-install.mjs replays this file's COPY, RUN, ENV, ENTRYPOINT, CMD and
# HEALTHCHECK on a scratch copy of the repository without docker (CI runs it). It follows the
# instructions used below; a RUN that only makes sense inside an image is marked `# image only`.

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json prisma.config.ts ./
COPY prisma ./prisma
COPY scripts/prisma.mjs scripts/build-web.ts ./scripts/
COPY web ./web
# postinstall runs `prisma generate` into src/generated and builds the studio (Vite) into web/dist.
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund

FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json prisma.config.ts ./
COPY prisma ./prisma
COPY scripts/prisma.mjs scripts/build-web.ts ./scripts/
# The generated client and the studio's bundle come from the build stage, so this install needs
# neither the Prisma CLI nor Vite (dev dependencies); when the CLI is present, postinstall
# regenerates the same client, and without Vite it keeps the bundle.
COPY --from=build /app/src/generated ./src/generated
COPY --from=build /app/web/dist ./web/dist
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --no-audit --no-fund
COPY src ./src
COPY bin ./bin
# The studio's trusted documents (ALLOW_ARBITRARY_OPERATIONS=false runs only these and the CLI's).
COPY web/src/gql/persisted-documents.json ./web/src/gql/

# Embedded PostgreSQL (when DATABASE_URL is unset), simulator media and local videos live here.
# compose.yaml gives DATABASE_URL (its own PostgreSQL) and S3 instead, so there it holds little.
# image only
RUN mkdir -p /data && chown node:node /data
ENV DATA_DIR=/data
VOLUME ["/data"]

USER node
EXPOSE 4000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 4000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Exec form: node is PID 1 and receives SIGTERM itself (src/process.ts drains and exits 0). Node
# runs the TypeScript sources itself (type stripping): no loader, no build step.
# `docker run image src/worker.ts` runs the queue worker; `src/admin/apikey.ts create` a key.
ENTRYPOINT ["node"]
CMD ["src/server.ts"]
