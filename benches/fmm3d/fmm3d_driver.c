/* FMM3D timing driver, for the comparison in BENCHMARKS.md only (not part of
 * the cargo build or the tests; see README.md in this directory).
 *
 *   fmm3d_driver CLOUD EPS [REPS] [REF]   (build: README.md here)
 *
 * CLOUD: the binary file written by `tree_profile ... dump=CLOUD`: N as a
 * little-endian u64, then N records x, y, z, q (f64). Calls lfmm3d_s_c_g
 * (sources = targets, charges, potential and gradient) REPS times (default 2)
 * and prints the best wall time, the process CPU time of that call and a
 * checksum. REF (optional): the file `CLOUD.ours` written by the same
 * tree_profile run (N records phi, gx, gy, gz of our tree); the driver then
 * prints the max-norm difference relative to the largest |phi| and |grad|.
 * FMM3D (this version, see lfmm3d_s_c_g in src/Laplace/lfmm3dwrap.f)
 * computes sum_j q_j / (4 pi r_ij), the self term dropped, no softening; ours
 * is sum_j q_j / (4 pi sqrt(r^2 + delta^2)): the same scale, so run
 * tree_profile with a tiny delta (delta=1e-12) for the check. (Older FMM3D
 * releases documented sum q_j / r_ij; a difference of exactly 1 - 1/(4 pi) =
 * 0.92 in the check would mean such a version.)
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void lfmm3d_s_c_g_(double *eps, int64_t *nsource, double *source,
                   double *charge, double *pot, double *grad, int64_t *ier);

static double cpu_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (!p) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  return p;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s CLOUD EPS [REPS] [REF]\n", argv[0]);
    return 2;
  }
  double eps = atof(argv[2]);
  int reps = argc > 3 ? atoi(argv[3]) : 2;
  FILE *f = fopen(argv[1], "rb");
  if (!f) {
    perror(argv[1]);
    return 1;
  }
  uint64_t n64;
  if (fread(&n64, 8, 1, f) != 1) return 1;
  int64_t n = (int64_t)n64;
  double *rec = xmalloc(sizeof(double) * 4 * n);
  if (fread(rec, sizeof(double), 4 * n, f) != (size_t)(4 * n)) return 1;
  fclose(f);
  /* source(3, n) in Fortran order: x, y, z of each point contiguous. */
  double *src = xmalloc(sizeof(double) * 3 * n), *q = xmalloc(sizeof(double) * n);
  for (int64_t i = 0; i < n; i++) {
    for (int k = 0; k < 3; k++) src[3 * i + k] = rec[4 * i + k];
    q[i] = rec[4 * i + 3];
  }
  double *pot = xmalloc(sizeof(double) * n), *grad = xmalloc(sizeof(double) * 3 * n);
  double best = INFINITY, best_cpu = INFINITY;
  for (int r = 0; r < reps; r++) {
    int64_t ier = 0;
    double t0 = omp_get_wtime(), c0 = cpu_now();
    lfmm3d_s_c_g_(&eps, &n, src, q, pot, grad, &ier);
    double t = omp_get_wtime() - t0, c = cpu_now() - c0;
    if (ier != 0) fprintf(stderr, "ier = %ld\n", (long)ier);
    if (t < best) {
      best = t;
      best_cpu = c;
    }
  }
  double cs_p = 0, cs_g = 0;
  for (int64_t i = 0; i < n; i++) {
    cs_p += q[i] * pot[i];
    cs_g += fabs(grad[3 * i]) + fabs(grad[3 * i + 1]) + fabs(grad[3 * i + 2]);
  }
  printf("FMM3D N=%ld eps=%g threads=%d best %.4f s (CPU %.2f s) of %d; "
         "checksum sum q*pot %.10e sum |grad| %.10e\n",
         (long)n, eps, omp_get_max_threads(), best, best_cpu, reps, cs_p, cs_g);
  if (argc > 4) {
    f = fopen(argv[4], "rb");
    if (!f) {
      perror(argv[4]);
      return 1;
    }
    if (fread(rec, sizeof(double), 4 * n, f) != (size_t)(4 * n)) return 1;
    fclose(f);
    const double s = 1.0;
    double ep = 0, mp = 0, eg = 0, mg = 0;
    for (int64_t i = 0; i < n; i++) {
      double dp = fabs(s * pot[i] - rec[4 * i]);
      if (dp > ep) ep = dp;
      if (fabs(rec[4 * i]) > mp) mp = fabs(rec[4 * i]);
      double dg2 = 0, g2 = 0;
      for (int k = 0; k < 3; k++) {
        double d = s * grad[3 * i + k] - rec[4 * i + 1 + k];
        dg2 += d * d;
        g2 += rec[4 * i + 1 + k] * rec[4 * i + 1 + k];
      }
      if (sqrt(dg2) > eg) eg = sqrt(dg2);
      if (sqrt(g2) > mg) mg = sqrt(g2);
    }
    printf("FMM3D / (4 pi) vs ours: phi %.2e grad %.2e (max-norm, relative to "
           "max |phi| %.4e, max |grad| %.4e)\n",
           ep / mp, eg / mg, mp, mg);
  }
  return 0;
}
