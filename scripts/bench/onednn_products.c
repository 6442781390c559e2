#include <dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
/* The products of a MiniLM layer's feed-forward shape (M rows x 384 by 384 x 1536) through the two ways oneDNN 2.6
 * offers: the BLAS-like gemm API the toolkit calls (dnnl_sgemm, dnnl_gemm_u8s8s32) and the matmul primitive with
 * its weights reordered once (on a CPU with AMX it picks brgemm AMX kernels, as ONEDNN_VERBOSE=1 shows). One thread:
 *
 *     cc -O2 scripts/bench/onednn_products.c -o /tmp/onednn_products -ldnnl
 *     for m in 32 256 1600; do OMP_NUM_THREADS=1 /tmp/onednn_products $m; done
 */
int main(int argc, char **argv) {
    int M = argc > 1 ? atoi(argv[1]) : 256, K = 384, N = 1536, reps = 200;
    dnnl_engine_t eng; dnnl_engine_create(&eng, dnnl_cpu, 0);
    dnnl_stream_t st; dnnl_stream_create(&st, eng, dnnl_stream_default_flags);
    uint8_t *a8 = calloc(M * K, 1); int8_t *b8 = calloc(K * N, 1); int32_t *c32 = calloc(M * N, 4);
    float *af = calloc(M * K, 4), *bf = calloc(K * N, 4), *cf = calloc(M * N, 4);
    for (int i = 0; i < M * K; i++) { a8[i] = i % 251; af[i] = (i % 17) * 0.1f; }
    for (int i = 0; i < K * N; i++) { b8[i] = (i % 13) - 6; bf[i] = (i % 7) * 0.1f; }
    double t0 = now();
    for (int r = 0; r < reps; r++) { int32_t co = 0; dnnl_gemm_u8s8s32('N', 'N', 'F', M, N, K, 1.f, a8, K, 0, b8, N, 0, 0.f, c32, N, &co); }
    double gemm8 = (now() - t0) / reps;
    t0 = now();
    for (int r = 0; r < reps; r++) dnnl_sgemm('N', 'N', M, N, K, 1.f, af, K, bf, N, 0.f, cf, N);
    double sg = (now() - t0) / reps;
    dnnl_data_type_t types[][3] = {{dnnl_u8, dnnl_s8, dnnl_s32}, {dnnl_bf16, dnnl_bf16, dnnl_f32}};
    double prim[2];
    for (int t = 0; t < 2; t++) {
        dnnl_memory_desc_t a, b, c, bany;
        dnnl_dims_t ad = {M, K}, bd = {K, N}, cd = {M, N};
        dnnl_memory_desc_init_by_tag(&a, 2, ad, types[t][0], dnnl_ab);
        dnnl_memory_desc_init_by_tag(&b, 2, bd, types[t][1], dnnl_ab);
        dnnl_memory_desc_init_by_tag(&bany, 2, bd, types[t][1], dnnl_format_tag_any);
        dnnl_memory_desc_init_by_tag(&c, 2, cd, types[t][2], dnnl_ab);
        dnnl_matmul_desc_t md; dnnl_matmul_desc_init(&md, &a, &bany, NULL, &c);
        dnnl_primitive_desc_t pd; dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL);
        dnnl_primitive_t p; dnnl_primitive_create(&p, pd);
        const dnnl_memory_desc_t *bpacked = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
        dnnl_memory_t ma, mb, mbp, mc;
        dnnl_memory_create(&ma, &a, eng, DNNL_MEMORY_ALLOCATE);
        dnnl_memory_create(&mb, &b, eng, DNNL_MEMORY_ALLOCATE);
        dnnl_memory_create(&mbp, bpacked, eng, DNNL_MEMORY_ALLOCATE);
        dnnl_memory_create(&mc, &c, eng, DNNL_MEMORY_ALLOCATE);
        dnnl_primitive_desc_t rpd; dnnl_reorder_primitive_desc_create(&rpd, &b, eng, bpacked, eng, NULL);
        dnnl_primitive_t rp; dnnl_primitive_create(&rp, rpd);
        dnnl_exec_arg_t rargs[] = {{DNNL_ARG_FROM, mb}, {DNNL_ARG_TO, mbp}};
        dnnl_primitive_execute(rp, st, 2, rargs); dnnl_stream_wait(st);
        dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mbp}, {DNNL_ARG_DST, mc}};
        dnnl_primitive_execute(p, st, 3, args); dnnl_stream_wait(st);
        t0 = now();
        for (int r = 0; r < reps; r++) dnnl_primitive_execute(p, st, 3, args);
        dnnl_stream_wait(st);
        prim[t] = (now() - t0) / reps;
    }
    double flop = 2.0 * M * K * N;
    printf("M=%d: sgemm %.1f GFLOP/s, gemm_u8s8s32 %.1f GOP/s, matmul u8s8 (AMX) %.1f GOP/s, matmul bf16 (AMX) %.1f GFLOP/s\n",
           M, flop / sg * 1e-9, flop / gemm8 * 1e-9, flop / prim[0] * 1e-9, flop / prim[1] * 1e-9);
    return 0;
}
