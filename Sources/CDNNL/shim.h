#include <stdint.h>
#include <oneapi/dnnl/dnnl.h>

// Exported by libdnnl.so.2 but not declared in oneDNN 2.6's public header. Row-major like dnnl_sgemm;
// A and B hold bfloat16 bit patterns (oneDNN's bfloat16_t is a struct around one uint16_t).
dnnl_status_t dnnl_gemm_bf16bf16f32(char transa, char transb, dnnl_dim_t M, dnnl_dim_t N, dnnl_dim_t K,
                                    float alpha, const uint16_t *A, dnnl_dim_t lda, const uint16_t *B,
                                    dnnl_dim_t ldb, float beta, float *C, dnnl_dim_t ldc);

// libgomp (oneDNN's threading runtime); gcc's omp.h is not on clang's include path.
void omp_set_num_threads(int num_threads);
