# /proc/self/smaps (BENCH_SERVER_SMAPS=1) Rss by kind: glibc thread arenas (anonymous rw mappings at 64 MiB-aligned starts),
# the main arena ([heap]), other anonymous (V8 pages + its page pool + the rest), files. python3 <this> A.txt B.txt
import sys,re,collections
def parse(p):
    maps=[];cur=None
    for line in open(p):
        m=re.match(r'^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$',line)
        if m:
            cur={'s':int(m[1],16),'e':int(m[2],16),'perm':m[3],'name':m[4].strip(),'rss':0}
            maps.append(cur);continue
        m=re.match(r'^Rss:\s+(\d+) kB',line)
        if m and cur: cur['rss']=int(m[1])
    return maps
ARENA=64<<20
def classify(maps):
    # thread arena heaps: 64MiB aligned start, anon; include the rw part
    out=collections.Counter()
    for i,m in enumerate(maps):
        if m['name']=='' :
            size=m['e']-m['s']
            if m['s']%ARENA==0 and m['perm'].startswith('rw'): k='arena'
            elif m['perm'].startswith('---'): k='none'
            else: k='anon-other'
        elif m['name']=='[heap]': k='mainheap'
        elif m['name'].startswith('/'): k='file'
        else: k=m['name']
        out[k]+=m['rss']
    return out
a=classify(parse(sys.argv[1])); b=classify(parse(sys.argv[2]))
for k in sorted(set(a)|set(b)): print(f"{k:20s} {a[k]:8d} {b[k]:8d} {b[k]-a[k]:+8d}")
