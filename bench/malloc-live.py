#!/usr/bin/env python3
"""Reads the dumps of bench/malloc-live.c (BENCHMARKS.md § Issue 12, Session 15 (rssnative)).

  python3 bench/malloc-live.py /tmp/rssn/live-<pid>-end.txt [--base /tmp/rssn/live-<pid>-base.txt]
        [--binary node_modules/node/bin/node] [--frames 4] [--top 25]

Prints, for glibc's main heap (brk) at the dump:
  - its extent, the bytes live in it and where the highest live block sits;
  - live bytes by 1/16 of the extent (the upper part holds what keeps the free chunks below resident);
  - live blocks made after the base dump, by site (the first frames outside the allocator), with how
    many sit in the upper half and the upper quarter of the extent;
  - for each such site: where the heap's top would be without its blocks (what it pins).
Symbols come from addr2line on the (non-PIE) binary; frames in shared libraries are named by library.
"""
import argparse
import bisect
import collections
import subprocess
import sys

ap = argparse.ArgumentParser()
ap.add_argument('dump')
ap.add_argument('--base')
ap.add_argument('--binary', default='node_modules/node/bin/node')
ap.add_argument('--maps')
ap.add_argument('--frames', type=int, default=4)
ap.add_argument('--top', type=int, default=25)
ap.add_argument('--peak', help='growth-<pid>.txt: the sites holding the most at the highest peak of bytes live')
a = ap.parse_args()


def read(path):
    head, blocks, stacks, calls = None, [], {}, {}
    with open(path) as f:
        for line in f:
            p = line.split()
            if p[0] == 'H':
                head = (int(p[1], 16), int(p[2], 16), int(p[3], 16), int(p[4]))
            elif p[0] == 'B':
                blocks.append((int(p[1], 16), int(p[2]), int(p[3]), int(p[4])))
            elif p[0] == 'S':
                stacks[int(p[1])] = [int(x, 16) for x in p[5:]]
                calls[int(p[1])] = (int(p[3]), int(p[4]))
    return head, blocks, stacks, calls


(start, brk, peak, nseq), blocks, stacks, calls = read(a.dump)
base = read(a.base) if a.base else None
base_seq = base[0][3] if base else 0
base_calls = base[3] if base else {}

maps = []
mpath = a.maps or a.dump.replace('/live-', '/maps-').rsplit('-', 1)[0] + '.txt'
try:
    for line in open(mpath):
        p = line.split()
        lo, hi = (int(x, 16) for x in p[0].split('-'))
        maps.append((lo, hi, p[5] if len(p) > 5 else ''))
except OSError:
    pass
maps.sort()

exe_lo = min((m[0] for m in maps if m[2].endswith('/node')), default=0)
exe_hi = max((m[1] for m in maps if m[2].endswith('/node')), default=0)


def lib_of(ip):
    i = bisect.bisect_right([m[0] for m in maps], ip) - 1
    if i >= 0 and maps[i][0] <= ip < maps[i][1]:
        return maps[i][2].rsplit('/', 1)[-1] or '?'
    return 'jit'


ips = sorted({ip for s in stacks.values() for ip in s if exe_lo <= ip < exe_hi})
names = {}
if ips:
    out = subprocess.run(['addr2line', '-f', '-C', '-e', a.binary] + [hex(ip - 1) for ip in ips], capture_output=True, text=True).stdout.split('\n')
    for k, ip in enumerate(ips):
        names[ip] = out[2 * k]


def name(ip):
    if ip in names:
        n = names[ip]
        n = n.split('(')[0] if n.count('(') else n
        return n[-70:]
    return lib_of(ip)


ALLOC = ('malloc', 'calloc', 'realloc', 'operator new', 'memalign', 'posix_memalign', 'aligned_alloc', 'CRYPTO_malloc', 'CRYPTO_zalloc', 'CRYPTO_realloc', 'uv__malloc', 'uv__calloc', 'uv__realloc', 'UncheckedMalloc', 'UncheckedCalloc', 'UncheckedRealloc', 'node::Malloc', 'node::Realloc', 'node::Calloc', 'libmlive', 'mlive.so', 'libc.so.6', 'libstdc++')


def site(sid):
    fr = [name(ip) for ip in stacks.get(sid, [])]
    k = 0
    while k < len(fr) - 1 and any(x in fr[k] for x in ALLOC):
        k += 1
    return ' < '.join(fr[k:k + a.frames]) or '?'


heap = sorted(b for b in blocks if start <= b[0] < brk)
live = sum(b[1] for b in heap)
ext = brk - start
top_block = heap[-1] if heap else None
print(f'main heap: extent {ext / 2**20:.2f} MiB (peak {(peak - start) / 2**20:.2f}), live {live / 2**20:.2f} MiB in {len(heap)} blocks, allocations {nseq} (base {base_seq})')
if top_block:
    print(f'highest live block at {(top_block[0] - start) / 2**20:.2f} MiB: {top_block[1]} B, seq {top_block[2]}, {site(top_block[3])}')

print('\nlive bytes by sixteenth of the extent (new = made after the base dump):')
bins = [[0, 0, collections.Counter()] for _ in range(16)]
for b in heap:
    i = min(15, (b[0] - start) * 16 // ext)
    bins[i][0] += b[1]
    if b[2] > base_seq:
        bins[i][1] += b[1]
        bins[i][2][site(b[3])] += b[1]
for i, (tot, new, c) in enumerate(bins):
    top = '; '.join(f'{v / 1024:.0f}K {k[:90]}' for k, v in c.most_common(2))
    print(f'  {i:2d} {tot / 1024:8.0f} KiB live ({new / 1024:7.0f} new)  {top}')

print('\nlive blocks made after the base, by site (KiB; count; in the upper half / quarter of the extent):')
by = collections.defaultdict(lambda: [0, 0, 0, 0, 0])
for b in heap:
    if b[2] <= base_seq:
        continue
    r = by[site(b[3])]
    r[0] += b[1]
    r[1] += 1
    pos = (b[0] - start) / ext
    r[2] += b[1] if pos >= 0.5 else 0
    r[3] += b[1] if pos >= 0.75 else 0
    r[4] = max(r[4], b[0])
rows = sorted(by.items(), key=lambda kv: -kv[1][0])
for k, (size, n, up, q, hi) in rows[: a.top]:
    print(f'  {size / 1024:8.1f} {n:7d} {up / 1024:8.1f} {q / 1024:8.1f}  {k}')

print('\nallocations made since the base, by site (calls, KiB):')
made = collections.defaultdict(lambda: [0, 0])
for sid, (n, b) in calls.items():
    n0, b0 = base_calls.get(sid, (0, 0))
    r = made[site(sid)]
    r[0] += n - n0
    r[1] += b - b0
for k, (n, b) in sorted(made.items(), key=lambda kv: -kv[1][0])[: a.top]:
    print(f'  {n:9d} {b / 1024:10.1f}  {k}')

# What each site pins: the heap's top without its blocks (all blocks, made any time).
print('\nwhat pins the top: the highest live block without each site\'s blocks (MiB from the start):')
order = sorted(heap, key=lambda b: -b[0])
seen = []
tops = {}
for b in order[:20000]:
    s = site(b[3])
    if s not in seen:
        seen.append(s)
    if len(seen) > 12:
        break
for s in seen[:12]:
    nxt = next((b for b in order if site(b[3]) != s), None)
    print(f'  {((nxt[0] - start) / 2**20 if nxt else 0):7.2f}  {s}')

if a.peak:
    last, rows = None, []
    for line in open(a.peak):
        p = line.split()
        if p[0] == 'L':
            last, rows = (int(p[1]), int(p[2]), int(p[3], 16)), []
        elif p[0] == 'l':
            rows.append((int(p[1]), int(p[2])))
    if last:
        print(f'\nthe highest peak of bytes live: {last[1] / 2**20:.2f} MiB at allocation {last[0]}, main heap then {(last[2] - start) / 2**20:.2f} MiB; sites holding 64 KiB or more (KiB):')
        by = collections.Counter()
        for sid, b in rows:
            by[site(sid)] += b
        for k, b in by.most_common(a.top):
            print(f'  {b / 1024:9.1f}  {k}')
