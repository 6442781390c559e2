// Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) are macros that cast addresses of its globals,
// which Swift does not import: these functions name them.
#include <mpi.h>

static inline MPI_Comm bertkit_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype bertkit_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype bertkit_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype bertkit_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype bertkit_mpi_int(void) { return MPI_INT; }
static inline MPI_Op bertkit_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op bertkit_mpi_max(void) { return MPI_MAX; }
static inline MPI_Op bertkit_mpi_min(void) { return MPI_MIN; }
static inline void *bertkit_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Errhandler bertkit_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline MPI_Info bertkit_mpi_info_null(void) { return MPI_INFO_NULL; }
static inline MPI_Comm bertkit_mpi_comm_null(void) { return MPI_COMM_NULL; }
