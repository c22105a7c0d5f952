import { generateKeyPairSync } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { privateKeyFromProtobuf, privateKeyFromRaw, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { InvalidConfigError } from '@rhizome/core';

/** A fresh Ed25519 private key, made synchronously (node:crypto). */
export function generatePrivateKey(): PrivateKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const d = privateKey.export({ format: 'jwk' }).d;
  const x = publicKey.export({ format: 'jwk' }).x;
  if (d === undefined || x === undefined) throw new Error('node:crypto returned an Ed25519 JWK without d or x');
  const raw = new Uint8Array(64);
  raw.set(Buffer.from(d, 'base64url'), 0);
  raw.set(Buffer.from(x, 'base64url'), 32);
  return privateKeyFromRaw(raw);
}

/**
 * Loads the libp2p private key stored at `path` (protobuf-encoded, as libp2p writes keys), or
 * creates the file with a new Ed25519 key and mode 0600 when it does not exist. A file that is
 * not a key throws {@link InvalidConfigError} naming the `keyFile` field; the file is left as is.
 */
export function loadOrCreateKeyFile(path: string): PrivateKey {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new InvalidConfigError('keyFile', `cannot read ${path}: ${(error as Error).message}`);
    }
    const key = generatePrivateKey();
    let fd: number;
    try {
      // 'wx': never overwrite a key another process wrote in the meantime.
      fd = openSync(path, 'wx', 0o600);
    } catch (createError) {
      if ((createError as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateKeyFile(path);
      throw new InvalidConfigError('keyFile', `cannot create ${path}: ${(createError as Error).message}`);
    }
    try {
      writeSync(fd, privateKeyToProtobuf(key));
    } finally {
      closeSync(fd);
    }
    return key;
  }
  try {
    return privateKeyFromProtobuf(bytes);
  } catch (error) {
    throw new InvalidConfigError('keyFile', `${path} is not a libp2p private key (${(error as Error).message}); move it away to create a new one`);
  }
}
