// How the browser tests start Chromium: Debian's package (apt-get install chromium), never a
// downloaded build, with the flags this machine's closed network needs.

/** The Chromium binary (override with RHIZOME_CHROMIUM). */
export const CHROMIUM_PATH = process.env.RHIZOME_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Launch flags: no sandbox (CI runs as root), no GPU, and none of Chromium's own background
 * traffic (which a closed network refuses, many connections at a time).
 */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];
