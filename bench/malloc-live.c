/*
 * Where glibc's main heap (brk) keeps its live chunks, by allocation site: an LD_PRELOAD interposer
 * for measuring (BENCHMARKS.md § Issue 12, Session 15 (rssnative)). Not part of the build or of any
 * package; Linux/glibc (x86-64) only. It wraps malloc/calloc/realloc/free/memalign/posix_memalign/
 * aligned_alloc, records for every live block its address, size, an allocation sequence number and
 * the native stack that made it (_Unwind_Backtrace, 14 frames), and on a trigger writes them all,
 * so that bench/malloc-live.py can say which sites' long-lived blocks sit high in the main heap
 * (above the free chunks glibc then holds) and which sites' blocks were made and freed around them.
 *
 *   gcc -O2 -shared -fPIC -o /tmp/rssn/mlive.so bench/malloc-live.c -lpthread
 *   mkdir -p /tmp/rssn
 *   MLIVE=1 LD_PRELOAD=/tmp/rssn/mlive.so node --expose-gc bench/client-memory.mjs --live-dump ...
 *
 * With MLIVE set, a thread polls for /tmp/rssn/dump-<pid> (its content: a tag) and then writes
 * /tmp/rssn/live-<pid>-<tag>.txt:
 *   H <heap start> <sbrk(0)> <peak sbrk(0)> <seq>     the main heap's extent (hex), allocations so far
 *   B <addr> <size> <seq> <stack id>                  one live block
 *   S <stack id> <frames> <calls> <bytes> <addr> ...  one stack: allocations made from it so far, return addresses (hex)
 *   P <seq> <sbrk(0)>                                 each time the main heap grew by 1 MiB more
 * and to /tmp/rssn/growth-<pid>.txt, at each new peak of the bytes live (2 MiB past the last):
 *   L <seq> <bytes live> <sbrk(0)>, then l <stack id> <bytes live> for the sites holding 64 KiB or more
 * and copies /proc/self/maps to /tmp/rssn/maps-<pid>.txt (for symbols: addr2line on the binary).
 * Only the first node process records (MLIVE_PID): its children inherit LD_PRELOAD and MLIVE, not the role.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <unwind.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

#define DEPTH 14
#define TABLE_BITS 24 /* 16 M slots for live blocks */
#define STACK_BITS 20

typedef struct { uintptr_t ptr; uint32_t size; uint32_t stack; uint64_t seq; } Block;
typedef struct { uint64_t hash; uint32_t n; uint64_t calls, bytes; int64_t live; uintptr_t ip[DEPTH]; } Stack;

static Block *blocks;
static Stack *stacks;
static uint32_t nstacks = 1;
static uint64_t seq;
static int enabled;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static __thread int inside __attribute__((tls_model("initial-exec")));
static uintptr_t heap_start, peak_brk, last_report;
static FILE *growth;
static int64_t live_bytes, peak_live, peak_written;
static void write_peak(void);

struct trace { uintptr_t ip[DEPTH + 2]; int n; };
static _Unwind_Reason_Code step(struct _Unwind_Context *c, void *arg) {
  struct trace *t = arg;
  if (t->n >= DEPTH + 2) return _URC_END_OF_STACK;
  t->ip[t->n++] = _Unwind_GetIP(c);
  return _URC_NO_REASON;
}

static uint32_t stack_id(size_t size) {
  struct trace t = { .n = 0 };
  _Unwind_Backtrace(step, &t);
  /* frames 0-1 are this file's */
  int skip = t.n > 2 ? 2 : 0, n = t.n - skip;
  uint64_t h = 1469598103934665603ull;
  for (int i = 0; i < n; i++) h = (h ^ t.ip[skip + i]) * 1099511628211ull;
  uint32_t mask = (1u << STACK_BITS) - 1, j = (uint32_t)(h ^ (h >> 29)) & mask;
  for (;;) {
    Stack *s = &stacks[j];
    if (s->hash == h && s->n == (uint32_t)n) { s->calls++; s->bytes += size; return j; }
    if (s->hash == 0 && s->n == 0) {
      if (nstacks >= (mask >> 1)) return 0;
      s->hash = h; s->n = n; s->calls = 1; s->bytes = size; memcpy(s->ip, t.ip + skip, n * sizeof(uintptr_t)); nstacks++;
      return j;
    }
    j = (j + 1) & mask;
  }
}

static inline uint32_t slot(uintptr_t p) { return (uint32_t)((p >> 4) * 2654435761u) & ((1u << TABLE_BITS) - 1); }

static void add(void *p, size_t size) {
  if (!p || !enabled || inside) return;
  inside = 1;
  pthread_mutex_lock(&lock);
  uint32_t mask = (1u << TABLE_BITS) - 1, j = slot((uintptr_t)p);
  for (int k = 0; blocks[j].ptr > 1 && blocks[j].ptr != (uintptr_t)p && k < (1 << 16); k++) j = (j + 1) & mask;
  blocks[j].ptr = (uintptr_t)p; blocks[j].size = size > 0xffffffffu ? 0xffffffffu : (uint32_t)size;
  blocks[j].seq = ++seq; blocks[j].stack = stack_id(size);
  stacks[blocks[j].stack].live += blocks[j].size;
  live_bytes += blocks[j].size;
  if (live_bytes > peak_live) {
    peak_live = live_bytes;
    if (growth && peak_live > peak_written + (2 << 20)) { peak_written = peak_live; write_peak(); }
  }
  uintptr_t top = (uintptr_t)sbrk(0);
  if (top > peak_brk) peak_brk = top;
  if (growth && top > last_report + (1 << 20)) { last_report = top; fprintf(growth, "P %lu %lx\n", (unsigned long)seq, (unsigned long)top); }
  pthread_mutex_unlock(&lock);
  inside = 0;
}

static void del(void *p) {
  if (!p || !enabled || inside) return;
  inside = 1;
  pthread_mutex_lock(&lock);
  uint32_t mask = (1u << TABLE_BITS) - 1, j = slot((uintptr_t)p);
  for (int k = 0; blocks[j].ptr && k < 4096; k++) { /* unknown blocks (made before init) end the search */
    if (blocks[j].ptr == (uintptr_t)p) { /* tombstone */
      blocks[j].ptr = 1;
      stacks[blocks[j].stack].live -= blocks[j].size;
      live_bytes -= blocks[j].size;
      break;
    }
    j = (j + 1) & mask;
  }
  pthread_mutex_unlock(&lock);
  inside = 0;
}

void *malloc(size_t n) { void *p = __libc_malloc(n); add(p, n); return p; }
void *calloc(size_t a, size_t b) { void *p = __libc_calloc(a, b); add(p, a * b); return p; }
void free(void *p) { del(p); __libc_free(p); }
void *realloc(void *p, size_t n) {
  void *q = __libc_realloc(p, n);
  if (q || n == 0) { del(p); add(q, n); }
  return q;
}
void *memalign(size_t a, size_t n) { void *p = __libc_memalign(a, n); add(p, n); return p; }
void *aligned_alloc(size_t a, size_t n) { return memalign(a, n); }
int posix_memalign(void **out, size_t a, size_t n) {
  void *p = __libc_memalign(a, n);
  if (!p) return ENOMEM;
  add(p, n);
  *out = p;
  return 0;
}

/* A new peak of the bytes live (2 MiB past the last written): the sites holding 64 KiB or more. */
static void write_peak(void) {
  fprintf(growth, "L %lu %ld %lx\n", (unsigned long)seq, (long)live_bytes, (unsigned long)sbrk(0));
  for (uint32_t j = 0; j < (1u << STACK_BITS); j++)
    if (stacks[j].live >= 65536) fprintf(growth, "l %u %ld\n", j, (long)stacks[j].live);
}

static void dump(const char *tag) {
  char path[160];
  inside = 1;
  pthread_mutex_lock(&lock);
  snprintf(path, sizeof path, "/tmp/rssn/live-%d-%s.txt", getpid(), tag);
  FILE *f = fopen(path, "w");
  if (f) {
    fprintf(f, "H %lx %lx %lx %lu\n", (unsigned long)heap_start, (unsigned long)sbrk(0), (unsigned long)peak_brk, (unsigned long)seq);
    for (uint32_t j = 0; j < (1u << TABLE_BITS); j++)
      if (blocks[j].ptr > 1) fprintf(f, "B %lx %u %lu %u\n", (unsigned long)blocks[j].ptr, blocks[j].size, (unsigned long)blocks[j].seq, blocks[j].stack);
    for (uint32_t j = 0; j < (1u << STACK_BITS); j++)
      if (stacks[j].n || stacks[j].hash) {
        fprintf(f, "S %u %u %lu %lu", j, stacks[j].n, (unsigned long)stacks[j].calls, (unsigned long)stacks[j].bytes);
        for (uint32_t i = 0; i < stacks[j].n; i++) fprintf(f, " %lx", (unsigned long)stacks[j].ip[i]);
        fputc('\n', f);
      }
    fclose(f);
  }
  pthread_mutex_unlock(&lock);
  snprintf(path, sizeof path, "/tmp/rssn/maps-%d.txt", getpid());
  FILE *out = fopen(path, "w"), *in = fopen("/proc/self/maps", "r");
  if (in && out) { char buf[4096]; size_t k; while ((k = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, k, out); }
  if (in) fclose(in);
  if (out) fclose(out);
  inside = 0;
}

static void *watch(void *arg) {
  (void)arg;
  char trig[128];
  snprintf(trig, sizeof trig, "/tmp/rssn/dump-%d", getpid());
  for (;;) {
    usleep(20000);
    FILE *t = fopen(trig, "r");
    if (t) {
      char tag[32] = "end";
      if (fscanf(t, "%31s", tag) != 1) strcpy(tag, "end");
      fclose(t);
      dump(tag);
      if (growth) fflush(growth);
      unlink(trig);
    }
  }
  return 0;
}

__attribute__((constructor)) static void init(void) {
  if (!getenv("MLIVE")) return;
  char pid[24];
  const char *owner = getenv("MLIVE_PID");
  snprintf(pid, sizeof pid, "%d", getpid());
  if (owner && strcmp(owner, pid) != 0) return; /* a child: not recorded */
  char exe[512];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[len > 0 ? len : 0] = 0;
  const char *base = strrchr(exe, '/');
  if (strcmp(base ? base + 1 : exe, "node") != 0) return; /* timeout, sh, ...: not recorded */
  setenv("MLIVE_PID", pid, 1);
  inside = 1;
  blocks = __libc_calloc((size_t)1 << TABLE_BITS, sizeof(Block));
  stacks = __libc_calloc((size_t)1 << STACK_BITS, sizeof(Stack));
  heap_start = (uintptr_t)sbrk(0);
  FILE *maps = fopen("/proc/self/maps", "r");
  if (maps) {
    char line[512];
    while (fgets(line, sizeof line, maps))
      if (strstr(line, "[heap]")) { unsigned long a; sscanf(line, "%lx", &a); heap_start = a; }
    fclose(maps);
  }
  char path[128];
  snprintf(path, sizeof path, "/tmp/rssn/growth-%d.txt", getpid());
  growth = fopen(path, "w");
  /* warm the unwinder (it loads libgcc_s and allocates once) */
  struct trace t = { .n = 0 };
  _Unwind_Backtrace(step, &t);
  inside = 0;
  enabled = 1;
  pthread_t th;
  pthread_create(&th, 0, watch, 0);
  pthread_detach(th);
}
