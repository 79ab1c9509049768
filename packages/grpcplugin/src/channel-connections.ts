import { connectivityState, type ChannelInterface } from '@grpc/grpc-js';

/**
 * Counts the times a channel became READY, to tell a call that never left the client from one
 * that may have reached the plugin. grpc-js sends a call only over a READY connection and moves
 * the channel to READY (calling its watchers at once) as the connection is made; so a call made
 * while the channel was not READY, which failed before it became READY again, was never sent.
 */
export class ChannelConnections {
  private connections = 0;

  /** `onLeftReady` is told each time the channel's connection stops taking calls (GOAWAY, or broken). */
  constructor(
    private readonly channel: ChannelInterface,
    private readonly onLeftReady: () => void = () => {},
  ) {
    this.watch();
  }

  /**
   * What {@link neverConnectedSince} compares with, for a call made now: undefined while the
   * channel is READY (the call may go out at once).
   */
  mark(): number | undefined {
    return this.ready() ? undefined : this.connections;
  }

  /** True when no connection was made since `mark` was taken: a call made then has not left. */
  neverConnectedSince(mark: number | undefined): boolean {
    return mark === this.connections && !this.ready();
  }

  private ready(): boolean {
    return this.channel.getConnectivityState(false) === connectivityState.READY;
  }

  /** Follows every change of state until the channel is closed; without a deadline, so no timer holds the process. */
  private watch(): void {
    const state = this.channel.getConnectivityState(false);
    if (state === connectivityState.SHUTDOWN) return;
    this.channel.watchConnectivityState(state, Infinity, () => {
      if (this.ready()) this.connections++;
      else if (state === connectivityState.READY) this.onLeftReady();
      this.watch();
    });
  }
}
