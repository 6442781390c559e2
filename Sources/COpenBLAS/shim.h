#include <cblas.h>
// Declared by OpenBLAS itself; repeated here so the module always exports it.
void openblas_set_num_threads(int num_threads);
char *openblas_get_corename(void);
