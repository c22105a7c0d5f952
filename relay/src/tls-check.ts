import { InvalidConfigError } from '@rhizome/core';

const CERTIFICATE = /-----BEGIN CERTIFICATE-----/;
const PRIVATE_KEY = /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/;

/**
 * Checks that `cert` holds a PEM certificate and `key` a PEM private key before TLS sees them, so
 * the common mistakes get a message saying what is wrong (OpenSSL would only say
 * `PEM routines::no start line`): the two swapped, a key given as the certificate, or a file that
 * is not PEM at all. DER input and anything else that passes is left to TLS itself.
 */
export function checkTlsPair(cert: Buffer, key: Buffer): void {
  const certText = cert.toString('latin1');
  const keyText = key.toString('latin1');
  const certIsKey = !CERTIFICATE.test(certText) && PRIVATE_KEY.test(certText);
  const keyIsCert = !PRIVATE_KEY.test(keyText) && CERTIFICATE.test(keyText);
  if (certIsKey && keyIsCert) {
    throw new InvalidConfigError(
      'tls',
      'the certificate and the key look swapped: the certificate file holds a private key and the key file a certificate (--tls-cert takes the certificate chain, e.g. fullchain.pem; --tls-key the private key, e.g. privkey.pem)',
    );
  }
  if (certIsKey) throw new InvalidConfigError('tls.cert', 'holds a private key, not a certificate (--tls-cert takes the certificate chain, e.g. fullchain.pem)');
  if (keyIsCert) throw new InvalidConfigError('tls.key', 'holds a certificate, not a private key (--tls-key takes the private key, e.g. privkey.pem)');
  if (certText.includes('-----BEGIN') && !CERTIFICATE.test(certText)) {
    throw new InvalidConfigError('tls.cert', 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
  }
  if (keyText.includes('-----BEGIN') && !PRIVATE_KEY.test(keyText)) {
    throw new InvalidConfigError('tls.key', 'holds no PEM private key (-----BEGIN PRIVATE KEY-----)');
  }
}
