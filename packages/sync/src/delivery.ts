/**
 * Delivery acknowledgements: knowing that a peer has applied everything this replica sent it.
 *
 * No new message is needed. A session sends a fresh sync step 1 (a new request id and the
 * current state vector) behind everything already queued; the peer handles messages in order and
 * answers every step 1 with a step 2 echoing its request id. When that answer arrives, the peer
 * has applied everything queued before the step 1. (The answer also carries whatever the peer has
 * that this replica lacks, which is applied like any step 2.) Peers running older versions answer
 * the same way, since answering step 1 is the base of the protocol.
 *
 * @packageDocumentation
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { TimeoutError } from '@rhizome/core';

/**
 * `whenDelivered` ran out of time (`ERR_TIMEOUT`, like every timeout), saying how many peers
 * acknowledged and how many were asked for.
 */
export class DeliveryTimeoutError extends TimeoutError {
  /** Peers that acknowledged before the timeout. */
  readonly acknowledged: number;
  /** Peers asked for (`minPeers`). */
  readonly wanted: number;

  constructor(acknowledged: number, wanted: number, timeoutMs: number, connected: number) {
    super(`only ${acknowledged} of ${wanted} peer(s) acknowledged within ${timeoutMs} ms (${connected} connected)`);
    this.acknowledged = acknowledged;
    this.wanted = wanted;
  }
}

/** Default bound of {@link Database.close}'s wait for connected peers to acknowledge. */
export const DEFAULT_FLUSH_TIMEOUT_MS = 2000;

/**
 * The acknowledgement requests of one session. The session calls {@link ready} once its answer
 * to the peer's first step 1 is queued (from then on, everything the replica holds is queued
 * for the peer), {@link answered} for each step 2 it receives, and {@link close} when it ends.
 */
export class AckRequests {
  readonly #send: (requestId: Uint8Array) => void;
  readonly #newId: () => Uint8Array;
  readonly #pending = new Map<string, (acked: boolean) => void>();
  #deferred: Array<(acked: boolean) => void> = [];
  #ready = false;
  #closed = false;

  /** `send` queues a step 1 with the given request id behind everything already queued. */
  constructor(send: (requestId: Uint8Array) => void, newId: () => Uint8Array) {
    this.#send = send;
    this.#newId = newId;
  }

  /**
   * Resolves `true` once the peer has applied everything queued for it before the request (and,
   * if its first step 1 had not arrived yet, the answer to it), `false` if the session ends first.
   */
  request(): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      if (this.#ready) this.#start(resolve);
      else this.#deferred.push(resolve);
    });
  }

  /** The answer to the peer's first step 1 is queued: deferred requests go out now. */
  ready(): void {
    if (this.#ready || this.#closed) return;
    this.#ready = true;
    const deferred = this.#deferred;
    this.#deferred = [];
    for (const resolve of deferred) this.#start(resolve);
  }

  /** A step 2 arrived; true if it answered one of these requests. */
  answered(requestId: Uint8Array): boolean {
    const key = bytesToHex(requestId);
    const resolve = this.#pending.get(key);
    if (resolve === undefined) return false;
    this.#pending.delete(key);
    resolve(true);
    return true;
  }

  /** Requests waiting for an answer. */
  get pending(): number {
    return this.#pending.size + this.#deferred.length;
  }

  /** The session ended: every open request resolves `false`. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const resolve of [...this.#pending.values(), ...this.#deferred]) resolve(false);
    this.#pending.clear();
    this.#deferred = [];
  }

  #start(resolve: (acked: boolean) => void): void {
    const id = this.#newId();
    this.#pending.set(bytesToHex(id), resolve);
    this.#send(id);
  }
}
