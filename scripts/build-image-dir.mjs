#!/usr/bin/env node
// Lays out the directory the container image holds (the Dockerfile runs this, and so does
// deploy/test/image-dir.test.ts): every binary's package with its production dependencies only
// (`pnpm deploy --prod`, one self-contained copy per package, no workspace links), and
// bin/<name>.mjs, a fixed path per binary that the manifests and units run with `node`, and
// bin/tcp-probe.mjs, the exec probe of the plugins that listen on 127.0.0.1 only.
// Usage: node scripts/build-image-dir.mjs OUT_DIR   (after `pnpm build`; OUT_DIR must not exist or be empty)
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const PACKAGES = ['packages/core', 'packages/plugin-k8s-drain', 'packages/plugin-aws-spot', 'packages/node-watcher'];

const out = process.argv[2];
if (!out) {
  process.stderr.write('usage: node scripts/build-image-dir.mjs OUT_DIR\n');
  process.exit(2);
}
const outDir = resolve(out);
if (existsSync(outDir) && readdirSync(outDir).length > 0) {
  process.stderr.write(`build-image-dir: ${outDir} is not empty\n`);
  process.exit(2);
}
mkdirSync(join(outDir, 'bin'), { recursive: true });
copyFileSync(join(root, 'deploy/image/tcp-probe.mjs'), join(outDir, 'bin/tcp-probe.mjs'));

for (const dir of PACKAGES.filter((d) => existsSync(join(root, d, 'package.json')))) {
  const pkg = JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8'));
  const [binName, binPath] = Object.entries(pkg.bin ?? {})[0] ?? [];
  if (!binName) throw new Error(`${dir}/package.json has no bin`);
  const target = join(outDir, binName);
  execFileSync('pnpm', ['--filter', pkg.name, 'deploy', '--prod', target], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  // The deploy's own lockfile and workspace file are install records, not needed to run.
  for (const f of ['pnpm-lock.yaml', 'pnpm-workspace.yaml']) rmSync(join(target, f), { force: true });
  if (!existsSync(join(target, binPath))) throw new Error(`${pkg.name}: ${binPath} is missing from the deploy; run pnpm build first`);
  writeFileSync(join(outDir, 'bin', `${binName}.mjs`), `import '../${binName}/${binPath.replace(/^\.\//, '')}';\n`);
  process.stdout.write(`${binName}: ${pkg.name}@${pkg.version} -> bin/${binName}.mjs\n`);
}
