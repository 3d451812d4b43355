// OpenBLAS's CBLAS interface plus its thread controls (libopenblas-dev).
#include <cblas.h>
