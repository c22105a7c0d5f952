/**
 * The numbers of the peer meters of the process (health.ts `PeerMeter`), one row each in typed
 * arrays shared by every database, instead of sixteen fields of every peer's session.
 *
 * An idle replica holds one meter per remote replica, and each of its numbers in a field costs 8 B
 * (a JavaScript object field is a pointer-sized slot, whatever the number). Here a row is 96 B:
 * five doubles (the start, last receive and last ping times, the acknowledged local sequence and
 * the carries of the four traffic totals) and fourteen 32-bit integers (the bucket the traffic
 * window last advanced to, the round-trip time in µs, pings sent and pongs received, the four
 * traffic totals' low 32 bits, the six cells of the small traffic ring). A meter keeps one field,
 * its row number. BENCHMARKS.md § Issue 12, Session 13 (peerpark).
 *
 * Rows live in pages of {@link ROWS_PER_PAGE} (one `ArrayBuffer` each, seen as a `Float64Array`
 * and an `Int32Array`), so the process grows by a page at a time and no row moves. A released row
 * goes on a free list and is reused; once no row is in use, the pages are dropped. The arrays are
 * per process, not per database: a typed array and its buffer cost some 300 B of their own, more
 * than a database's few rows.
 */

/** Rows per page (6 KiB of numbers; the first page is what a process with any peer pays). */
export const ROWS_PER_PAGE = 64;
const SHIFT = 6;
const MASK = ROWS_PER_PAGE - 1;

/** Doubles per row ({@link F_STARTED} ...). */
export const F_COLS = 5;
/** 32-bit integers per row ({@link I_BUCKET} ...). */
export const I_COLS = 14;
/** Bytes of numbers per row. */
export const ROW_BYTES = F_COLS * 8 + I_COLS * 4;

// Double columns.
export const F_STARTED = 0;
export const F_RECEIVED_AT = 1;
export const F_PING_AT = 2;
export const F_ACKED = 3;
/** The four traffic totals' carries past 2^32, {@link CARRY_BITS} bits each (see {@link addTotal}). */
export const F_CARRIES = 4;

// Integer columns.
export const I_BUCKET = 0;
export const I_RTT = 1;
/** Pings sent and pongs received: uint32 (they wrap after 2^32; a ping every 5 s for 680 years). */
export const I_PINGS = 2;
export const I_PONGS = 3;
/** The traffic totals' low 32 bits (uint32), in the order of {@link TOTAL_FRAMES_SENT} ... */
export const I_TOTALS = 4;
/** The small traffic ring's six cells (health.ts: `in * 2^15 + out`, each below 2^30). */
export const I_SMALL = 8;

/** Which traffic total: an offset from {@link I_TOTALS}, and the carry's place in {@link F_CARRIES}. */
export const TOTAL_FRAMES_SENT = 0;
export const TOTAL_FRAMES_RECEIVED = 1;
export const TOTAL_BYTES_SENT = 2;
export const TOTAL_BYTES_RECEIVED = 3;

/** Bits of a total's carry: a total counts up to 2^45 (32 TiB, 3.5e13 frames), then stays there. */
const CARRY_BITS = 13;
const CARRY_SPAN = 2 ** CARRY_BITS;
const MAX_CARRY = CARRY_SPAN - 1;

/** Rows of meters: doubles `f` and integers `i`, row `s` at `s * F_COLS` and `s * I_COLS`. */
export interface MeterPage {
  readonly f: Float64Array;
  readonly i: Int32Array;
}

function newPage(rows: number): MeterPage {
  const buffer = new ArrayBuffer(rows * ROW_BYTES);
  return { f: new Float64Array(buffer, 0, rows * F_COLS), i: new Int32Array(buffer, rows * F_COLS * 8, rows * I_COLS) };
}

const pages: MeterPage[] = [];
/** Released rows, reused last in first out. */
const free: number[] = [];
/** Rows handed out and not released. */
let live = 0;

/** A row of zeros (the caller sets its first values). */
export function allocRow(): number {
  live++;
  let row = free.pop();
  if (row === undefined) {
    row = pages.length * ROWS_PER_PAGE;
    pages.push(newPage(ROWS_PER_PAGE));
    // The page's other rows, lowest first out.
    for (let r = row + ROWS_PER_PAGE - 1; r > row; r--) free.push(r);
    return row;
  }
  const page = pages[row >>> SHIFT]!;
  const slot = row & MASK;
  page.f.fill(0, slot * F_COLS, slot * F_COLS + F_COLS);
  page.i.fill(0, slot * I_COLS, slot * I_COLS + I_COLS);
  return row;
}

/**
 * Gives `row` back and returns its numbers in a page of their own (one row, slot 0), for a meter
 * still read, or written by a send in flight, after its session ended.
 */
export function releaseRow(row: number): MeterPage {
  const page = pages[row >>> SHIFT]!;
  const slot = row & MASK;
  const own = newPage(1);
  own.f.set(page.f.subarray(slot * F_COLS, slot * F_COLS + F_COLS));
  own.i.set(page.i.subarray(slot * I_COLS, slot * I_COLS + I_COLS));
  live--;
  if (live === 0) {
    // Nothing in use: the pages go (a process that had many peers and has none keeps nothing).
    pages.length = 0;
    free.length = 0;
  } else free.push(row);
  return own;
}

/** The page of `row` (row {@link slotOf} of it). */
export function pageOf(row: number): MeterPage {
  return pages[row >>> SHIFT]!;
}

/** Where `row` is in its page. */
export function slotOf(row: number): number {
  return row & MASK;
}

/** A total's carry (how many times it passed 2^32) from the carries column. */
export function carryOf(carries: number, total: number): number {
  return Math.floor(carries / CARRY_SPAN ** total) % CARRY_SPAN;
}

/** The carries column with `total`'s carry one more; unchanged at {@link MAX_CARRY} (the total then stays at 2^45 - 1). */
export function carriedOnce(carries: number, total: number): number {
  return carryOf(carries, total) >= MAX_CARRY ? carries : carries + CARRY_SPAN ** total;
}

/** True if `total`'s carry is at its largest. */
export function carrySaturated(carries: number, total: number): boolean {
  return carryOf(carries, total) >= MAX_CARRY;
}

export const LOW_SPAN = 2 ** 32;

/** Rows in use and pages held (for tests). */
export function meterRowStats(): { live: number; pages: number; free: number } {
  return { live, pages: pages.length, free: free.length };
}
