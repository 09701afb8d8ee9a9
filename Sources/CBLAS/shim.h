#ifndef HERD_CBLAS_SHIM_H
#define HERD_CBLAS_SHIM_H
#include <cblas.h>
// OpenBLAS extensions used by Herd (declared in openblas_config.h / cblas.h of Debian's 0.3.21).
#endif
