/*
 * glibc malloc statistics for bench/client-memory.mjs (BENCHMARKS.md § Issue 12, Session 9 (cliconn)).
 * Not part of the build or of any package: an LD_PRELOAD helper for measuring, Linux/glibc only.
 *
 *   gcc -O2 -shared -fPIC -o /tmp/cliconn/mstat.so bench/malloc-stats.c -lpthread
 *   mkdir -p /tmp/cliconn
 *   MSTAT=1 LD_PRELOAD=/tmp/cliconn/mstat.so node --expose-gc bench/client-memory.mjs ...
 *
 * With MSTAT set, a thread polls for /tmp/cliconn/mstat-<pid> (or mtrim-<pid>: also malloc_trim(0))
 * and appends mallinfo2() of all arenas, as one JSON line, to /tmp/cliconn/mstat-<pid>.out.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static void report(const char *tag, FILE *f) {
  struct mallinfo2 m = mallinfo2();
  fprintf(f, "{\"tag\":\"%s\",\"arena\":%zu,\"hblkhd\":%zu,\"uordblks\":%zu,\"fordblks\":%zu,\"keepcost\":%zu,\"ordblks\":%zu,\"smblks\":%zu,\"fsmblks\":%zu}\n",
          tag, m.arena, m.hblkhd, m.uordblks, m.fordblks, m.keepcost, m.ordblks, m.smblks, m.fsmblks);
}
static void *watch(void *arg) {
  char trig[128], out[128], trim[128];
  snprintf(trig, sizeof trig, "/tmp/cliconn/mstat-%d", getpid());
  snprintf(trim, sizeof trim, "/tmp/cliconn/mtrim-%d", getpid());
  snprintf(out, sizeof out, "/tmp/cliconn/mstat-%d.out", getpid());
  for (;;) {
    usleep(20000);
    int t = access(trim, F_OK) == 0;
    if (access(trig, F_OK) == 0 || t) {
      FILE *f = fopen(out, "a");
      report("stat", f);
      if (t) { malloc_trim(0); report("after-trim", f); }
      fclose(f);
      unlink(trig); unlink(trim);
    }
  }
  return 0;
}
__attribute__((constructor)) static void init(void) {
  if (!getenv("MSTAT")) return;
  pthread_t th; pthread_create(&th, 0, watch, 0); pthread_detach(th);
}
