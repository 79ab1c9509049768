import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';

/** One rendered Kubernetes object, as far as these checks read it. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  [field: string]: unknown;
}

const run = promisify(execFile);

/** Whether `kubectl` (with its built-in kustomize) is on the PATH. */
export const hasKubectl = spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0;

/** `kubectl kustomize dir`, parsed. */
export async function render(dir: string): Promise<KubeObject[]> {
  const { stdout } = await run('kubectl', ['kustomize', dir], { maxBuffer: 16 * 1024 * 1024 });
  return parseAllDocuments(stdout).map((doc) => doc.toJS() as KubeObject);
}

/** Renders a kustomization made of `resources` and `components` (directories), as a user's own overlay would be. */
export async function renderComposed(resources: readonly string[], components: readonly string[]): Promise<KubeObject[]> {
  const dir = await mkdtemp(join(tmpdir(), 'hollowtrees-kustomize-'));
  try {
    // Kustomize takes only relative paths.
    const from = (paths: readonly string[]): string[] => paths.map((p) => relative(dir, p));
    await writeFile(join(dir, 'kustomization.yaml'), JSON.stringify({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: from(resources), components: from(components) }));
    return await render(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

type Model = new (data: unknown) => { validate(): void };

/** The module of `kubernetes-models` (or its Prometheus Operator models) that holds an object's kind. */
function modelModule(apiVersion: string, kind: string): string {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  if (group === 'monitoring.coreos.com') return `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`;
  return `kubernetes-models/${group ? `${group}/` : ''}${version}/${kind}`;
}

/**
 * Validates an object against the OpenAPI schema of its kind (types, required fields, formats);
 * throws naming the object and what is wrong, or that no schema exists for its kind.
 * The schemas allow unknown fields, as the API server's non-strict decoding does.
 */
export async function validateAgainstSchema(object: KubeObject): Promise<void> {
  const where = `${object.kind} ${object.metadata.name}`;
  let model: Model | undefined;
  try {
    model = ((await import(modelModule(object.apiVersion, object.kind))) as Record<string, Model>)[object.kind];
  } catch {
    model = undefined;
  }
  if (!model) throw new Error(`${where}: no schema for ${object.apiVersion} ${object.kind}`);
  try {
    new model(object).validate();
  } catch (err) {
    throw new Error(`${where}: ${(err as Error).message}`);
  }
}
