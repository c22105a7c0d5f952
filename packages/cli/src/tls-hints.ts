import type { TransportConfig } from '@rhizome/core';

/** Whether the relay URL the user typed names no scheme (`127.0.0.1:8081`, `relay.example.com`). */
export function hasNoScheme(url: string): boolean {
  return !/^[a-z][a-z0-9+.-]*:\/\//i.test(url.trim());
}

/** The errno-style codes along an error's cause chain. */
function causeCodes(error: unknown): string[] {
  const codes: string[] = [];
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 6; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
  }
  return codes;
}

/** The relay URL's scheme and `host:port`, as the transport uses them (no scheme means wss://). */
function relayTarget(relayUrl: string): { scheme: 'ws' | 'wss' | 'other'; hostPort: string } {
  const text = hasNoScheme(relayUrl) ? `wss://${relayUrl.trim()}` : relayUrl.trim();
  try {
    const url = new URL(text.replace(/^http/i, 'ws'));
    const scheme = url.protocol === 'ws:' ? 'ws' : url.protocol === 'wss:' ? 'wss' : 'other';
    return { scheme, hostPort: `${url.hostname}${url.port === '' ? ':443' : `:${url.port}`}` };
  } catch {
    return { scheme: 'other', hostPort: relayUrl };
  }
}

/**
 * The likely cause of a failure to reach a relay, when TLS is involved: `wss://` to a relay that
 * serves plain WebSockets, `ws://` to one that serves TLS, or a certificate the client does not
 * trust (with or without `--tls-ca`). `undefined` when the failure is not one of those.
 */
export function tlsHint(error: unknown, network: Partial<TransportConfig> | Array<Partial<TransportConfig>> | undefined, tlsCaFile?: string): string | undefined {
  const codes = causeCodes(error);
  const relay = network === undefined ? undefined : (Array.isArray(network) ? network : [network]).find((p) => p.mode === 'relay');
  // With several relays (--relay repeated) the failing one is not known here: no scheme advice.
  const relayUrl = typeof relay?.relayUrl === 'string' ? relay.relayUrl : undefined;
  const { scheme, hostPort } = relayTarget(relayUrl ?? '');
  if (codes.some((c) => /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME|UNABLE_TO_GET_ISSUER/.test(c))) {
    return tlsCaFile === undefined
      ? "The relay's TLS certificate is not trusted here: for a self-signed or private CA, pass it with --tls-ca FILE (PEM)."
      : `The relay's certificate is not accepted with --tls-ca ${tlsCaFile}: it is not signed by that certificate, or it does not name ${hostPort.replace(/:\d+$/, '')} (the host in the URL must be one of its names).`;
  }
  if (relayUrl === undefined) return undefined;
  const reset = codes.includes('ECONNRESET') || codes.includes('EPROTO') || codes.some((c) => c.startsWith('ERR_SSL_') || c.startsWith('HPE_'));
  if (!reset) return undefined;
  if (scheme === 'wss') {
    return `The TLS handshake with ${hostPort} failed: the relay there likely serves plain WebSockets without TLS (\`rhizome relay\` without --tls-cert). Use ws://${hostPort}, or give the relay --tls-cert and --tls-key.`;
  }
  if (scheme === 'ws') {
    return `${hostPort} closed the connection without answering the WebSocket request: the relay there likely serves TLS (--tls-cert, or a TLS proxy in front). Use wss://${hostPort} (and --tls-ca FILE for a self-signed certificate).`;
  }
  return undefined;
}
