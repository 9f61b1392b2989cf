// glibc's allocator tuning (mallopt, malloc_trim), which the Glibc module does not expose.
#include <malloc.h>
