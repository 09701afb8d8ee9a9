// The helpers are static inline in include/herd_kernels.h; this file gives the target a translation unit.
#include "herd_kernels.h"
