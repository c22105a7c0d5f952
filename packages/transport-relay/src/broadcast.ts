import type { TopicBroadcast } from '@rhizome/core';

/** What a {@link RelayTopicBroadcast} needs from its transport. */
export interface BroadcastOwner<S> {
  /** Largest payload of a data frame in the current session. */
  readonly dataLimit: number;
  /** True while `state` is joined in session `generation` (the one the broadcast was made for). */
  broadcastOpen(state: S, generation: number): boolean;
  /** Sends one BROADCAST frame for `state` in session `generation`. */
  sendBroadcast(state: S, generation: number, data: Uint8Array): Promise<void>;
}

/**
 * The relay's BROADCAST as a core {@link TopicBroadcast}: one per joined topic per relay
 * session. The relay sends the frame to every other paired member of the topic as a DELIVER
 * from this client, which each member's transport hands to its Connection for this client, in
 * order with the SENDs of that Connection (one socket, one order).
 */
export class RelayTopicBroadcast<S> implements TopicBroadcast {
  readonly #owner: BroadcastOwner<S>;
  readonly #state: S;
  readonly #generation: number;

  constructor(owner: BroadcastOwner<S>, state: S, generation: number) {
    this.#owner = owner;
    this.#state = state;
    this.#generation = generation;
  }

  get maxMessageSize(): number {
    return this.#owner.dataLimit;
  }

  get closed(): boolean {
    return !this.#owner.broadcastOpen(this.#state, this.#generation);
  }

  send(data: Uint8Array): Promise<void> {
    return this.#owner.sendBroadcast(this.#state, this.#generation, data);
  }
}
