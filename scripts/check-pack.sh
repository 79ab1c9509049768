#!/usr/bin/env bash
# Packs every published package (@hollowtrees/grpcplugin, core, the two plugins, the node watcher)
# as it would be published, checks what each tarball holds, then installs them together in a
# throwaway project that serves a handler from the SDK (JavaScript), requires and imports every
# package, runs every bin with node, and type-checks a TypeScript consumer of every package
# against its .d.ts files, as a project with TypeScript's default checks (no skipLibCheck) would.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
packages=(grpcplugin core plugin-k8s-drain plugin-aws-spot node-watcher)
for name in "${packages[@]}"; do
  (cd "$root/packages/$name" && pnpm pack --pack-destination "$tmp" >/dev/null)
done
for tarball in "$tmp"/*.tgz; do
  listing=$(tar -tzf "$tarball")
  unexpected=$(echo "$listing" | grep -Ev '^package/(dist/.+\.(js|d\.ts)|proto/hollowtrees/.+\.proto|iam-policy\.json|README\.md|LICENSE|package\.json)$' || true)
  if [ -n "$unexpected" ]; then
    echo "unexpected files in $(basename "$tarball"):" >&2
    echo "$unexpected" >&2
    exit 1
  fi
  for needed in package/README.md package/LICENSE package/dist/index.js package/dist/index.d.ts; do
    grep -qx "$needed" <<<"$listing" || { echo "$needed missing from $(basename "$tarball")" >&2; exit 1; }
  done
  # The npm page links to the repository from these; the READMEs send readers to the repository's README.
  tar -xzOf "$tarball" package/package.json | node -e '
    const p = JSON.parse(require("fs").readFileSync(0, "utf8"));
    if (!p.repository?.url || !p.homepage) { console.error(`${p.name}: package.json has no repository or homepage`); process.exit(1); }'
  # A sourceMappingURL would point at a .map (and the .map at src/) the tarball does not hold.
  mapped=$(tar -xzOf "$tarball" --wildcards 'package/dist/*' | grep -c 'sourceMappingURL' || true)
  if [ "$mapped" != "0" ]; then
    echo "$mapped files in $(basename "$tarball") reference source maps it does not ship" >&2
    exit 1
  fi
done
echo "each of the ${#packages[@]} tarballs holds dist JS and .d.ts, README and LICENSE, names its repository, and references no source map"
# Plugin authors in other languages generate their code from the .proto the SDK ships.
sdk=$(ls "$tmp"/hollowtrees-grpcplugin-*.tgz)
tar -tzf "$sdk" | grep -x 'package/proto/hollowtrees/plugin/v1/plugin.proto' >/dev/null || { echo "plugin.proto missing from $(basename "$sdk")" >&2; exit 1; }
tar -tzf "$tmp"/hollowtrees-plugin-aws-spot-*.tgz | grep -x 'package/iam-policy.json' >/dev/null || { echo "iam-policy.json missing from the AWS plugin's tarball" >&2; exit 1; }

mkdir "$tmp/consumer" && cd "$tmp/consumer"
cat > package.json <<'JSON'
{ "name": "consumer", "private": true, "type": "module" }
JSON
npm install --no-audit --no-fund --loglevel=error "$tmp"/*.tgz >/dev/null
cat > serve-check.mjs <<'JS'
import { serve, PluginClient } from '@hollowtrees/grpcplugin';
const server = await serve(0, { handle: (event) => ({ attributes: { seen: event.id } }) }, { host: '127.0.0.1' });
const client = new PluginClient(`127.0.0.1:${server.port}`);
const response = await client.handle({ id: 'e-1', source: 'consumer', specversion: '1.0', type: 'check' }, { flow: 'pack-check' });
client.close();
await server.close();
if (response.attributes.seen !== 'e-1') throw new Error(`unexpected response ${JSON.stringify(response)}`);
console.log('installed tarball serves a handler');
JS
node serve-check.mjs
# A CommonJS project (Node 20.19+ requires ES modules through the exports map's 'default' condition).
cat > require-check.cjs <<'JS'
const { serve, PluginClient } = require('@hollowtrees/grpcplugin');
const proto = require.resolve('@hollowtrees/grpcplugin/proto/hollowtrees/plugin/v1/plugin.proto');
if (typeof serve !== 'function' || typeof PluginClient !== 'function') throw new Error('require() gave no serve/PluginClient');
console.log(`a CommonJS script requires the SDK; the contract is at ${require('path').relative(process.cwd(), proto)}`);
JS
node require-check.cjs
# The entry for code that must start fast: both ways, and gRPC stays unloaded.
node -e "const m = require('@hollowtrees/grpcplugin/without-grpc'); if (typeof m.PluginError !== 'function' || typeof m.packageVersion !== 'function') throw new Error('require(without-grpc) gave no PluginError/packageVersion'); if (Object.keys(require.cache).some((f) => f.includes('@grpc'))) throw new Error('require(without-grpc) loaded gRPC')"
node --input-type=module -e "const m = await import('@hollowtrees/grpcplugin/without-grpc'); if (typeof m.labelsOf !== 'function') throw new Error('import(without-grpc) gave no labelsOf')"
# Every package loads both ways, and every bin runs with node itself (as the image and the units run it).
for pkg in @hollowtrees/core @hollowtrees/plugin-k8s-drain @hollowtrees/plugin-aws-spot @hollowtrees/node-watcher; do
  node -e "if (Object.keys(require('$pkg')).length === 0) throw new Error('require($pkg) gave no exports')"
  node --input-type=module -e "const m = await import('$pkg'); if (Object.keys(m).length === 0) throw new Error('import($pkg) gave no exports')"
done
for bin in hollowtrees hollowtrees-k8s-drain hollowtrees-aws-spot hollowtrees-node-watcher; do
  node "node_modules/.bin/$bin" --version >/dev/null
done
echo "every package is required and imported, every bin runs with node"
cat > consumer.ts <<'TS'
import { serve, PluginError, Code, labelsOf, type EventHandler } from '@hollowtrees/grpcplugin';
import { invokeHandler, manualClock, testEvent } from '@hollowtrees/grpcplugin/testing';
import { packageVersion, PluginError as FastStartError } from '@hollowtrees/grpcplugin/without-grpc';
import { DEFAULT_CONFIG_YAML, parseConfig, startHollowtrees } from '@hollowtrees/core';
import { createDrainHandler, type DrainOptions } from '@hollowtrees/plugin-k8s-drain';
import { type AwsSpotReplaceOptions } from '@hollowtrees/plugin-aws-spot';
import { createMonitor, type MonitorSettings } from '@hollowtrees/node-watcher';
class Handler implements EventHandler {
  handle(event: Parameters<EventHandler['handle']>[0]) {
    if (!labelsOf(event).instance_id) throw new PluginError(Code.InvalidArgument, 'no instance_id');
    return { attributes: { ok: 'yes' } };
  }
}
export const start = () => serve(9000, new Handler());
export const version: string = packageVersion(import.meta.url);
export const sameError: boolean = new FastStartError(Code.Unavailable, 'x') instanceof PluginError;
export const tried = invokeHandler(new Handler(), testEvent({ labels: { instance_id: 'i-1' } }), { clock: manualClock() });
// The other packages' types, which name their own dependencies' (the Kubernetes client's, the AWS SDK's).
export const core = () => startHollowtrees(parseConfig(DEFAULT_CONFIG_YAML, 'default.yaml'));
export const drain = (...args: Parameters<typeof createDrainHandler>) => createDrainHandler(...args);
export type Drain = DrainOptions;
export type Replace = AwsSpotReplaceOptions;
export const watch = (settings: MonitorSettings) => createMonitor(settings);
TS
cat > tsconfig.json <<'JSON'
{ "compilerOptions": { "strict": true, "module": "NodeNext", "moduleResolution": "NodeNext", "target": "ES2022", "noEmit": true, "types": [] }, "files": ["consumer.ts"] }
JSON
node "$root/node_modules/typescript/bin/tsc" -p tsconfig.json
echo "a TypeScript consumer of every package type-checks against the published types"
