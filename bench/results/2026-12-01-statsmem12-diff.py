import json,sys,collections
def load(f):
    s=json.load(open(f)); m=s['snapshot']['meta']; nf=len(m['node_fields']); types=m['node_types'][0]
    ti=m['node_fields'].index('type'); ni=m['node_fields'].index('name'); si=m['node_fields'].index('self_size')
    n=s['nodes']; st=s['strings']; out=collections.defaultdict(lambda:[0,0])
    for i in range(0,len(n),nf):
        t=types[n[i+ti]]; name=st[n[i+ni]]
        if t in ('string','concatenated string','sliced string','number'): name=''
        k=t+':'+name[:80]; out[k][0]+=1; out[k][1]+=n[i+si]
    return out
a=load(sys.argv[1]); b=load(sys.argv[2]); N=int(sys.argv[3])
rows=[]
for k in set(a)|set(b):
    x=a.get(k,[0,0]); y=b.get(k,[0,0])
    if x!=y: rows.append((y[0]-x[0],y[1]-x[1],k))
rows.sort(key=lambda r:-abs(r[1]))
print('total',sum(r[1] for r in rows),'B',sum(r[1] for r in rows)/N,'B/replica')
for r in rows[:45]: print(*r)
