/** A node taint: `key=value:effect`. */
export interface Taint {
  key: string;
  value: string;
  effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
}

/** A node label: `key=value`. */
export interface NodeLabel {
  key: string;
  value: string;
}

/** What cordoning puts on a node besides `spec.unschedulable`. */
export interface NodeMarks {
  taint: Taint;
  label: NodeLabel;
}

/** The default taint, `hollowtrees.io/spot-termination=true:NoSchedule`. */
export const DEFAULT_TAINT: Readonly<Taint> = Object.freeze({ key: 'hollowtrees.io/spot-termination', value: 'true', effect: 'NoSchedule' });

/** The default label, `hollowtrees.io/spot-termination=true`, to find drained nodes with a selector. */
export const DEFAULT_NODE_LABEL: Readonly<NodeLabel> = Object.freeze({ key: 'hollowtrees.io/spot-termination', value: 'true' });

const EFFECTS = new Set(['NoSchedule', 'PreferNoSchedule', 'NoExecute']);

/**
 * Parses `key=value:Effect` (or `key:Effect`, value empty), as `kubectl taint` writes it.
 * @throws Error naming what is wrong.
 */
export function parseTaint(text: string): Taint {
  const m = /^([^=:\s]+)(?:=([^:\s]*))?:(\S+)$/.exec(text);
  if (!m || !EFFECTS.has(m[3]!)) throw new Error(`taint "${text}" is not key=value:Effect with Effect one of NoSchedule, PreferNoSchedule, NoExecute`);
  return { key: m[1]!, value: m[2] ?? '', effect: m[3] as Taint['effect'] };
}

/**
 * Parses `key=value`.
 * @throws Error naming what is wrong.
 */
export function parseNodeLabel(text: string): NodeLabel {
  const m = /^([^=\s]+)=(\S*)$/.exec(text);
  if (!m) throw new Error(`label "${text}" is not key=value`);
  return { key: m[1]!, value: m[2]! };
}
