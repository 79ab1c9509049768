import { createHash, randomUUID } from 'node:crypto';
import { AwsApiError } from './aws-api-error.js';

/** A message as the stand-in keeps it. */
export interface SqsMessage {
  readonly messageId: string;
  readonly body: string;
  /** Hex MD5 of the body: what the SDK checks every received body against. */
  readonly md5OfBody: string;
  /** Milliseconds since the epoch. */
  readonly sentAt: number;
  /** How often it was received (SQS's `ApproximateReceiveCount`, exact here). */
  receiveCount: number;
  firstReceivedAt: number | undefined;
  /** When the latest receive handed it out: SQS caps its visibility at {@link SqsQueue.maxVisibilitySeconds} from then. */
  lastReceivedAt: number | undefined;
  /** Not handed out before this time (visibility timeout or delay). */
  invisibleUntil: number;
  /** The handle of the latest receive; only it may change the visibility. */
  receiptHandle: string | undefined;
}

/** Redrive policy: after `maxReceiveCount` receives a message moves to the dead-letter queue. */
export interface RedrivePolicy {
  readonly deadLetterTargetArn: string;
  readonly maxReceiveCount: number;
}

/** The hex MD5 of a UTF-8 string, as SQS reports `MD5OfBody` / `MD5OfMessageBody`. */
export function md5Hex(text: string): string {
  return createHash('md5').update(text, 'utf8').digest('hex');
}

/** SQS's answer to a receipt handle that does not name a message received from this queue. */
const invalidReceiptHandle = (handle: string): AwsApiError =>
  new AwsApiError('ReceiptHandleIsInvalid', `The input receipt handle "${handle}" is not a valid receipt handle.`, 404);

/**
 * One standard queue: messages in send order, each hidden for its visibility
 * timeout after a receive and visible again when it expires; a receive of a
 * message already received `maxReceiveCount` times moves it to the dead-letter
 * queue instead. Time is read from `now`, so a test may pin it.
 */
export class SqsQueue {
  /** Messages by id, in send order (a Map keeps insertion order). */
  private readonly messages = new Map<string, SqsMessage>();
  private readonly byHandle = new Map<string, SqsMessage>();
  private readonly waiters = new Set<() => void>();
  private wakeTimer: NodeJS.Timeout | undefined;
  /** Default visibility timeout in seconds (SQS's default is 30). */
  visibilityTimeoutSeconds = 30;
  /** How long after its latest receive a message may stay hidden at most, as SQS caps it: 12 hours. Lower it to reach the cap in a test. */
  maxVisibilitySeconds = 43_200;
  redrivePolicy: RedrivePolicy | undefined;

  constructor(
    readonly name: string,
    readonly url: string,
    readonly arn: string,
    private readonly now: () => number,
    /** Finds the dead-letter queue a redrive policy names. */
    private readonly queueByArn: (arn: string) => SqsQueue | undefined,
  ) {}

  /** Every message the queue holds, visible or not. */
  list(): readonly SqsMessage[] {
    return [...this.messages.values()];
  }

  /** Messages that a receive would hand out now. */
  get visibleCount(): number {
    const now = this.now();
    return this.list().filter((m) => m.invisibleUntil <= now).length;
  }

  /** Messages received and not yet visible again or deleted (SQS's "in flight"). */
  get inFlightCount(): number {
    const now = this.now();
    return this.list().filter((m) => m.invisibleUntil > now && m.receiveCount > 0).length;
  }

  send(body: string, delaySeconds = 0, messageId: string = randomUUID()): SqsMessage {
    const sentAt = this.now();
    const message: SqsMessage = {
      messageId,
      body,
      md5OfBody: md5Hex(body),
      sentAt,
      receiveCount: 0,
      firstReceivedAt: undefined,
      lastReceivedAt: undefined,
      invisibleUntil: sentAt + delaySeconds * 1000,
      receiptHandle: undefined,
    };
    this.messages.set(message.messageId, message);
    this.wake();
    return message;
  }

  /**
   * Hands out up to `max` visible messages, each hidden for `visibilitySeconds`
   * (default the queue's) under a new receipt handle. Long polls for up to
   * `waitSeconds` when none is visible; `aborted` ends the wait early.
   */
  async receive(max: number, visibilitySeconds: number | undefined, waitSeconds: number, aborted: AbortSignal): Promise<SqsMessage[]> {
    const deadline = this.now() + waitSeconds * 1000;
    for (;;) {
      const taken = this.take(max, visibilitySeconds ?? this.visibilityTimeoutSeconds);
      const left = deadline - this.now();
      if (taken.length > 0 || left <= 0 || aborted.aborted) return taken;
      await this.waitForChange(left, aborted);
    }
  }

  /** Deletes a message by its latest receipt handle; an older handle of a message still here is accepted and ignored, as SQS does. */
  delete(receiptHandle: string): void {
    const message = this.byHandle.get(receiptHandle);
    if (!message) throw invalidReceiptHandle(receiptHandle);
    if (message.receiptHandle !== receiptHandle) return;
    this.remove(message);
  }

  /** Sets how long from now a received message stays hidden; 0 makes it visible at once. */
  changeVisibility(receiptHandle: string, visibilitySeconds: number): void {
    const message = this.byHandle.get(receiptHandle);
    if (!message) throw invalidReceiptHandle(receiptHandle);
    if (message.receiptHandle !== receiptHandle) {
      throw new AwsApiError(
        'InvalidParameterValue',
        `Value ${receiptHandle} for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired.`,
      );
    }
    if (message.invisibleUntil <= this.now()) {
      throw new AwsApiError('MessageNotInflight', 'The message referred to is not in flight.');
    }
    if (this.now() + visibilitySeconds * 1000 > message.lastReceivedAt! + this.maxVisibilitySeconds * 1000) {
      throw new AwsApiError(
        'InvalidParameterValue',
        `Value ${visibilitySeconds} for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout for the message is beyond the limit [${this.maxVisibilitySeconds} seconds]`,
      );
    }
    message.invisibleUntil = this.now() + visibilitySeconds * 1000;
    this.wake();
  }

  /** Removes every message. */
  purge(): void {
    for (const message of this.list()) this.remove(message);
  }

  /** Ends pending long polls (they answer with what is visible, usually nothing). */
  close(): void {
    clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    for (const waiter of this.waiters) waiter();
  }

  private take(max: number, visibilitySeconds: number): SqsMessage[] {
    const now = this.now();
    const taken: SqsMessage[] = [];
    for (const message of this.messages.values()) {
      if (taken.length >= max) break;
      if (message.invisibleUntil > now) continue;
      if (this.redrivePolicy && message.receiveCount >= this.redrivePolicy.maxReceiveCount && this.moveToDeadLetterQueue(message)) continue;
      message.receiveCount++;
      message.firstReceivedAt ??= now;
      message.lastReceivedAt = now;
      message.invisibleUntil = now + visibilitySeconds * 1000;
      message.receiptHandle = `${message.messageId}#${randomUUID()}`;
      this.byHandle.set(message.receiptHandle, message);
      taken.push(message);
    }
    if (taken.length > 0) this.wake();
    return taken;
  }

  /** Moves a message to the dead-letter queue; false (the message stays) when that queue does not exist. */
  private moveToDeadLetterQueue(message: SqsMessage): boolean {
    const target = this.queueByArn(this.redrivePolicy!.deadLetterTargetArn);
    if (!target) return false;
    this.remove(message);
    target.send(message.body, 0, message.messageId);
    return true;
  }

  private remove(message: SqsMessage): void {
    this.messages.delete(message.messageId);
    for (const [handle, held] of this.byHandle) if (held === message) this.byHandle.delete(handle);
  }

  private waitForChange(ms: number, aborted: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        aborted.removeEventListener('abort', done);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      aborted.addEventListener('abort', done);
      this.waiters.add(done);
    });
  }

  /** Wakes long polls now, and again when the next hidden message becomes visible. */
  private wake(): void {
    for (const waiter of this.waiters) waiter();
    clearTimeout(this.wakeTimer);
    const now = this.now();
    let next = Infinity;
    for (const message of this.messages.values()) if (message.invisibleUntil > now) next = Math.min(next, message.invisibleUntil);
    if (next === Infinity) return;
    this.wakeTimer = setTimeout(() => this.wake(), next - now).unref();
  }
}
