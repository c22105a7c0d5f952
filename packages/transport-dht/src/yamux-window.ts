import { yamux, type YamuxMuxerInit } from '@chainsafe/libp2p-yamux';
import { StreamState } from '@chainsafe/libp2p-yamux/stream';
import type { StreamMuxerFactory } from '@libp2p/interface';

/** The part of @chainsafe/libp2p-yamux 8's stream that {@link lazyWindowUpdates} reads (not in its public types). */
interface YamuxStreamWindow {
  state?: unknown;
  recvWindow?: unknown;
  recvWindowCapacity?: unknown;
  sendWindowUpdate?: () => void;
}

/** The part of @chainsafe/libp2p-yamux 8's muxer that {@link lazyWindowUpdates} hooks. */
interface YamuxMuxerStreams {
  _newStream?: (...args: unknown[]) => unknown;
}

/**
 * @chainsafe/libp2p-yamux 8 answers every data frame it receives with a window update frame
 * (`YamuxStream.handleData` → `sendWindowUpdate`, which sends whenever the receive window is not
 * full), so a stream of small messages — Rhizome's sync frames, health pings, kad-dht requests —
 * costs twice the frames on the wire, each one noise-encrypted and written by itself: in a V8
 * profile of an idle replica `sendWindowUpdate` alone was 12 % of its CPU (BENCHMARKS.md § DHT
 * join). go-yamux and rust-yamux send the update only once half the window is consumed; the yamux
 * spec leaves the timing to the receiver (the sender may not exceed the window, whatever we do).
 * This makes each stream of the muxer do the same: while the stream is established, an update is
 * sent only once the unused receive window fell below half the window. Flags (SYN/ACK) and
 * resuming a paused stream still go out at once. If a later yamux changes these internals,
 * nothing is hooked and every frame is answered as before.
 *
 * @returns true if the muxer was hooked.
 */
export function lazyWindowUpdates(muxer: unknown): boolean {
  const m = muxer as YamuxMuxerStreams;
  const newStream = m._newStream;
  if (typeof newStream !== 'function') return false;
  m._newStream = function (this: unknown, ...args: unknown[]): unknown {
    const stream = newStream.apply(this, args) as YamuxStreamWindow;
    const send = stream.sendWindowUpdate;
    if (typeof send === 'function' && typeof stream.recvWindow === 'number' && typeof stream.recvWindowCapacity === 'number') {
      stream.sendWindowUpdate = function (this: YamuxStreamWindow): void {
        if (this.state === StreamState.Established && (this.recvWindowCapacity as number) * 2 >= (this.recvWindow as number)) return;
        send.call(this);
      };
    }
    return stream;
  };
  return true;
}

/** `yamux(init)` whose muxers send window updates lazily (see {@link lazyWindowUpdates}). */
export function rhizomeYamux(init: YamuxMuxerInit, lazy = true): () => StreamMuxerFactory {
  const factory = yamux(init);
  if (!lazy) return factory;
  return () => {
    const muxers = factory();
    const create = muxers.createStreamMuxer.bind(muxers);
    muxers.createStreamMuxer = (maConn) => {
      const muxer = create(maConn);
      lazyWindowUpdates(muxer);
      return muxer;
    };
    return muxers;
  };
}
