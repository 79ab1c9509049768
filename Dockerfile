# One image with every Hollowtrees binary; the command chooses which runs:
#   node /app/bin/hollowtrees.mjs, /app/bin/hollowtrees-k8s-drain.mjs, /app/bin/hollowtrees-aws-spot.mjs,
#   /app/bin/hollowtrees-node-watcher.mjs.
# The base's entrypoint is node itself, so a container runs e.g. `args: [/app/bin/hollowtrees.mjs, ...]`:
# node is PID 1's only process and gets SIGTERM (npx would swallow it). No shell at run time.
# Build: docker build -t hollowtrees:0.1.0 .

FROM node:22-bookworm-slim AS build
WORKDIR /src
RUN corepack enable
COPY . .
RUN pnpm install --frozen-lockfile \
 && pnpm -r --filter './packages/*' run build \
 && node scripts/build-image-dir.mjs /app

FROM gcr.io/distroless/nodejs22-debian12:nonroot
COPY --from=build /app /app
WORKDIR /app
# 65532 (nonroot): runAsNonRoot can check a numeric user.
USER 65532:65532
ENV NODE_ENV=production
EXPOSE 9092
CMD ["/app/bin/hollowtrees.mjs", "--config", "/etc/hollowtrees/config.yaml"]
