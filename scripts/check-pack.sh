#!/usr/bin/env bash
# Packs @hollowtrees/grpcplugin as it would be published, checks what the tarball
# holds, then installs it in a throwaway project that serves a handler from it
# (JavaScript) and type-checks a TypeScript consumer against its .d.ts files.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$root/packages/grpcplugin"
pnpm pack --pack-destination "$tmp" >/dev/null
tarball=$(ls "$tmp"/*.tgz)
unexpected=$(tar -tzf "$tarball" | grep -Ev '^package/(dist/.+\.(js|d\.ts)|proto/hollowtrees/.+\.proto|README\.md|LICENSE|package\.json)$' || true)
if [ -n "$unexpected" ]; then
  echo "unexpected files in $(basename "$tarball"):" >&2
  echo "$unexpected" >&2
  exit 1
fi
echo "tarball holds only dist JS, .d.ts, the .proto contract, README, LICENSE ($(tar -tzf "$tarball" | wc -l) files)"
# Plugin authors in other languages generate their code from the .proto the package ships.
tar -tzf "$tarball" | grep -qx 'package/proto/hollowtrees/plugin/v1/plugin.proto' || { echo "plugin.proto missing from $(basename "$tarball")" >&2; exit 1; }
# A sourceMappingURL would point at a .map (and the .map at src/) the tarball does not hold.
mapped=$(tar -xzOf "$tarball" --wildcards 'package/dist/*' | grep -c 'sourceMappingURL' || true)
if [ "$mapped" != "0" ]; then
  echo "$mapped files in $(basename "$tarball") reference source maps it does not ship" >&2
  exit 1
fi
echo "no file references a source map the tarball lacks"

mkdir "$tmp/consumer" && cd "$tmp/consumer"
cat > package.json <<'JSON'
{ "name": "consumer", "private": true, "type": "module" }
JSON
npm install --no-audit --no-fund --loglevel=error "$tarball" >/dev/null
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
cat > consumer.ts <<'TS'
import { serve, PluginError, Code, labelsOf, type EventHandler } from '@hollowtrees/grpcplugin';
import { invokeHandler, manualClock, testEvent } from '@hollowtrees/grpcplugin/testing';
class Handler implements EventHandler {
  handle(event: Parameters<EventHandler['handle']>[0]) {
    if (!labelsOf(event).instance_id) throw new PluginError(Code.InvalidArgument, 'no instance_id');
    return { attributes: { ok: 'yes' } };
  }
}
export const start = () => serve(9000, new Handler());
export const tried = invokeHandler(new Handler(), testEvent({ labels: { instance_id: 'i-1' } }), { clock: manualClock() });
TS
cat > tsconfig.json <<'JSON'
{ "compilerOptions": { "strict": true, "module": "NodeNext", "moduleResolution": "NodeNext", "target": "ES2022", "noEmit": true, "types": [] }, "files": ["consumer.ts"] }
JSON
node "$root/node_modules/typescript/bin/tsc" -p tsconfig.json
echo "a TypeScript consumer type-checks against the published types"
