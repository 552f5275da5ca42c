/* Open MPI ping-pong between ranks 0 and 1 (MPI_Send / MPI_Recv), the counterpart of
   bench/p2p-pingpong.mjs (ringtrain's send/recv). Same sizes, iteration counts and output.
   usage: mpirun -np 2 pingpong MIN_BYTES MAX_BYTES ITERS
   prints (rank 0), one line per size (x4): bytes latency_us bandwidth_GBps wrong
   latency = half the median round trip; bandwidth = bytes / latency. The message is checked
   once per size (rank 1 echoes what it got; rank 0 compares). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, n;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  long lo = argc > 1 ? atol(argv[1]) : 4, hi = argc > 2 ? atol(argv[2]) : 16 << 20;
  int iters = argc > 3 ? atoi(argv[3]) : 100;
  if (n < 2) {
    if (rank == 0) fprintf(stderr, "pingpong needs 2 ranks\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  unsigned char *buf = malloc((size_t)hi), *want = malloc((size_t)hi);
  double *rtt = malloc(sizeof(double) * (size_t)iters);
  if (rank == 0) printf("# bytes latency_us bandwidth_GBps wrong\n");
  for (long bytes = lo; bytes <= hi; bytes *= 4) {
    int count = (int)bytes;
    long wrong = 0;
    for (long i = 0; i < bytes; i++) want[i] = (unsigned char)(i * 7 + 3);
    if (rank < 2) {
      /* One checked exchange, then warm-up, then the timed round trips. */
      if (rank == 0) {
        memcpy(buf, want, (size_t)bytes);
        MPI_Send(buf, count, MPI_BYTE, 1, 1, MPI_COMM_WORLD);
        memset(buf, 0, (size_t)bytes);
        MPI_Recv(buf, count, MPI_BYTE, 1, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        for (long i = 0; i < bytes; i++) wrong += buf[i] != want[i];
      } else {
        MPI_Recv(buf, count, MPI_BYTE, 0, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Send(buf, count, MPI_BYTE, 0, 1, MPI_COMM_WORLD);
      }
      for (int k = -5; k < iters; k++) {
        double t0 = MPI_Wtime();
        if (rank == 0) {
          MPI_Send(buf, count, MPI_BYTE, 1, 2, MPI_COMM_WORLD);
          MPI_Recv(buf, count, MPI_BYTE, 1, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        } else {
          MPI_Recv(buf, count, MPI_BYTE, 0, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
          MPI_Send(buf, count, MPI_BYTE, 0, 2, MPI_COMM_WORLD);
        }
        if (k >= 0) rtt[k] = MPI_Wtime() - t0;
      }
    }
    if (rank == 0) {
      qsort(rtt, (size_t)iters, sizeof(double), cmp);
      double half = rtt[iters / 2] / 2;
      printf("%ld %.2f %.3f %ld\n", bytes, half * 1e6, bytes / half / 1e9, wrong);
      fflush(stdout);
    }
  }
  free(buf);
  free(want);
  free(rtt);
  MPI_Finalize();
  return 0;
}
