/* Open MPI's side of ringtrain's collective benchmark (docs/benchmarks.md), in the same
   conventions: size = the buffer nccl-tests names per collective, busbw = algbw x its factor,
   one checked call outside the timed loop.
   usage: collectives NAME MIN_BYTES MAX_BYTES ITERS     NAME: allreduce bcast allgather reduce_scatter sendrecv barrier
   prints (rank 0), one line per size: bytes time_us algbw_GBps busbw_GBps wrong */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rank, n;

/* One call of the named collective on count floats of size-buffer `a` (b: second buffer). */
static void call(const char *name, float *a, float *b, long count) {
  if (!strcmp(name, "allreduce")) MPI_Allreduce(MPI_IN_PLACE, a, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  else if (!strcmp(name, "bcast")) MPI_Bcast(a, (int)count, MPI_FLOAT, 0, MPI_COMM_WORLD);
  else if (!strcmp(name, "allgather")) MPI_Allgather(a + rank * (count / n), (int)(count / n), MPI_FLOAT, b, (int)(count / n), MPI_FLOAT, MPI_COMM_WORLD);
  else if (!strcmp(name, "reduce_scatter")) MPI_Reduce_scatter_block(a, b, (int)(count / n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  else if (!strcmp(name, "sendrecv"))
    MPI_Sendrecv(a, (int)count, MPI_FLOAT, (rank + 1) % n, 7, b, (int)count, MPI_FLOAT, (rank + n - 1) % n, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  else MPI_Barrier(MPI_COMM_WORLD);
}

static double factor(const char *name) {
  if (!strcmp(name, "allreduce")) return 2.0 * (n - 1) / n;
  if (!strcmp(name, "allgather") || !strcmp(name, "reduce_scatter")) return (double)(n - 1) / n;
  if (!strcmp(name, "barrier")) return 0;
  return 1;
}

/* Fills the inputs, makes one call, and counts wrong elements against the exact result. */
static long check(const char *name, float *a, float *b, long count) {
  long part = count / n, wrong = 0;
  for (long i = 0; i < count; i++) a[i] = (float)((i + rank) % 2);
  if (!strcmp(name, "bcast") && rank != 0) for (long i = 0; i < count; i++) a[i] = -1;
  if (!strcmp(name, "allgather")) for (long i = 0; i < count; i++) a[i] = (float)(rank * 3 + i % 5);
  call(name, a, b, count);
  for (long i = 0; i < count; i++) {
    long ones = 0;
    for (int r = 0; r < n; r++) ones += (i + r) % 2;
    if (!strcmp(name, "allreduce")) wrong += a[i] != (float)ones;
    else if (!strcmp(name, "bcast")) wrong += a[i] != (float)(i % 2);
    else if (!strcmp(name, "allgather") && part) wrong += b[i] != (float)((i / part) * 3 + i % 5);
    else if (!strcmp(name, "sendrecv")) wrong += b[i] != (float)((i + (rank + n - 1) % n) % 2);
  }
  if (!strcmp(name, "reduce_scatter"))
    for (long j = 0; j < part; j++) {
      long i = rank * part + j, ones = 0;
      for (int r = 0; r < n; r++) ones += (i + r) % 2;
      wrong += b[j] != (float)ones;
    }
  return wrong;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  if (argc != 5) {
    if (rank == 0) fprintf(stderr, "usage: %s allreduce|bcast|allgather|reduce_scatter|sendrecv|barrier MIN_BYTES MAX_BYTES ITERS\n", argv[0]);
    MPI_Finalize();
    return 2;
  }
  const char *name = argv[1];
  long lo = atol(argv[2]), hi = atol(argv[3]);
  int iters = atoi(argv[4]);
  int sized = strcmp(name, "barrier") != 0;
  float *a = malloc(hi > 4 ? hi : 4), *b = malloc(hi > 4 ? hi : 4);
  for (long bytes = sized ? lo : 0; bytes <= (sized ? hi : 0); bytes = bytes ? bytes * 4 : 4) {
    long count = bytes / 4;
    if (!strcmp(name, "allgather") || !strcmp(name, "reduce_scatter")) count -= count % n;
    long wrong = sized ? check(name, a, b, count) : 0, total = 0;
    MPI_Reduce(&wrong, &total, 1, MPI_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
    for (int i = 0; i < 2; i++) call(name, a, b, count); /* warm-up */
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    for (int it = 0; it < iters; it++) call(name, a, b, count);
    double mine = (MPI_Wtime() - t0) / iters, t = 0;
    MPI_Reduce(&mine, &t, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD); /* the slowest rank's time, as ringtrain reports */
    double alg = count * 4.0 / t / 1e9;
    if (rank == 0) printf("%ld %.1f %.4f %.4f %ld\n", count * 4, t * 1e6, alg, alg * factor(name), total);
    if (!sized) break;
  }
  free(a);
  free(b);
  MPI_Finalize();
  return 0;
}
