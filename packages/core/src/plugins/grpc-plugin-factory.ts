import type { Config } from '../config/schema.js';
import type { grpcActionPlugin } from './grpc-action-plugin.js';

/** What builds a gRPC plugin's client: {@link grpcActionPlugin}. */
export type GrpcPluginFactory = typeof grpcActionPlugin;

let loading: Promise<GrpcPluginFactory> | undefined;

/**
 * The gRPC plugin factory, loaded (with gRPC and the generated protobuf code, a fifth of core's start-up) once a
 * configuration has a gRPC plugin; undefined while none had. Once a load began, every later call waits on it, so
 * that overlapping reloads still reach their swap in the order they were asked for.
 */
export async function grpcPluginFactory(config: Config): Promise<GrpcPluginFactory | undefined> {
  if (loading === undefined && !Object.values(config.plugins).some((pc) => pc.type === 'grpc')) return undefined;
  loading ??= import('./grpc-action-plugin.js').then((module) => module.grpcActionPlugin);
  return loading;
}
