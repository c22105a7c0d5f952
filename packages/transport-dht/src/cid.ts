import { createHash } from 'node:crypto';
import { assertTopic } from '@rhizome/core';
import { CID } from 'multiformats/cid';
import { create as createDigest } from 'multiformats/hashes/digest';

/** Multicodec of raw bytes, the CID codec of a topic's provider key. */
export const RAW_CODEC = 0x55;
/** Multihash code of sha2-256. */
export const SHA2_256_CODE = 0x12;

/**
 * The CID a topic is announced under: CID v1, codec raw (0x55), multihash sha2-256 over the 32
 * topic bytes.
 *
 * Why not a blake2b-256 multihash (0xb220) wrapping the topic, which already is a BLAKE2b-256
 * digest: @libp2p/kad-dht 16.4 decodes the key of ADD_PROVIDER and GET_PROVIDERS messages with
 * `CID.decode(multihash)`, which only accepts sha2-256 multihashes (the CIDv0 form); every
 * remote answers any other multihash with "Invalid CID" and resets the stream, so a
 * blake2b-keyed provider record is never stored anywhere but locally. See ARCHITECTURE.md.
 */
export function topicToCid(topic: Uint8Array): CID {
  assertTopic(topic);
  const digest = createHash('sha256').update(topic).digest();
  return CID.createV1(RAW_CODEC, createDigest(SHA2_256_CODE, new Uint8Array(digest)));
}
