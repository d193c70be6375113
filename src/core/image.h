/*
 * Image files.
 *
 * Every image file starts with a 32-byte little-endian header:
 *
 *   0  magic "FERRYIMG"
 *   8  u32 format version (FERRY_IMG_VERSION)
 *  12  u32 kind (enum img_kind)
 *  16  u64 payload length in bytes
 *  24  u64 XXH3-64 of the payload (0 for pages files: their chunks carry checksums)
 *
 * followed by one protobuf message of that kind. Pages files (pages-PID.img)
 * hold raw page data instead; their header is padded to 4096 bytes so that
 * page data is page-aligned in the file. A reader rejects a wrong magic, a
 * newer version, a wrong kind, a short payload or a checksum mismatch.
 */
#ifndef FERRY_CORE_IMAGE_H
#define FERRY_CORE_IMAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <protobuf-c/protobuf-c.h>

#include "core/err.h"
#include "ferry.pb-c.h"

#define FERRY_IMG_MAGIC "FERRYIMG"
#define FERRY_IMG_VERSION 1
#define FERRY_IMG_HDR_SIZE 32
#define FERRY_PAGES_DATA_OFF 4096
#define FERRY_IMG_MAX_PAYLOAD (1ULL << 32)

enum img_kind {
	IMG_INVENTORY = 1,
	IMG_PSTREE = 2,
	IMG_TASK = 3,
	IMG_CORE = 4,
	IMG_MM = 5,
	IMG_FDS = 6,
	IMG_PAGEMAP = 7,
	IMG_PAGES = 8,
};

/* Page run flags (PageRun.flags). */
#define FERRY_PR_PRESENT 0x1u   /* data in pages-PID.img at off */
#define FERRY_PR_IN_PARENT 0x2u /* unchanged since the parent image: look there */
#define FERRY_PR_LAZY 0x4u      /* data stays on the source, fetched on demand */
#define FERRY_PR_ZERO 0x8u      /* reads as zeros (shared zero page) */

/* Vma.madv bits */
#define FERRY_MADV_DONTFORK 0x1u
#define FERRY_MADV_DONTDUMP 0x2u
#define FERRY_MADV_HUGEPAGE 0x4u
#define FERRY_MADV_NOHUGEPAGE 0x8u
#define FERRY_MADV_WIPEONFORK 0x10u
#define FERRY_MADV_MERGEABLE 0x20u

/* Private anonymous memory (anon, heap, stack): what post-copy leaves lazy. */
static inline bool vma_is_private_anon(const Vma *v)
{
	return !strcmp(v->kind, "anon") || !strcmp(v->kind, "heap") || !strcmp(v->kind, "stack");
}

struct img_hdr {
	char magic[8];
	uint32_t version;
	uint32_t kind;
	uint64_t len;
	uint64_t csum;
} __attribute__((packed));

const char *img_kind_name(enum img_kind kind);
/* The message descriptor for a kind, NULL for IMG_PAGES or unknown kinds. */
const ProtobufCMessageDescriptor *img_kind_desc(enum img_kind kind);

/*
 * Whether written images are fsync'd (the default). A lazy dump turns it off:
 * its source stays frozen until the destination has every page, so nothing
 * depends on the images surviving a crash of the source, and the syncs would
 * add milliseconds to the downtime.
 */
void img_set_durable(bool on);
bool img_is_durable(void);

/* Write msg as image `name` in dirfd (O_TRUNC; fsync'd if durable). */
int img_write(int dirfd, const char *name, enum img_kind kind, const ProtobufCMessage *msg,
	      struct ferry_err *err);

/* Read and unpack image `name`; free with protobuf_c_message_free_unpacked(*out, NULL). */
int img_read(int dirfd, const char *name, enum img_kind kind, ProtobufCMessage **out,
	     struct ferry_err *err);

/* Decode an image held in memory (header and payload), as img_read_any does. */
int img_decode(const uint8_t *data, size_t size, const char *name, enum img_kind *kind,
	       ProtobufCMessage **out, struct ferry_err *err);

/* Read any image file: fills its kind and message (NULL for pages files). */
int img_read_any(int dirfd, const char *name, enum img_kind *kind, ProtobufCMessage **out,
		 struct ferry_err *err);

/* Pages files: write the padded header; check it on open. */
int img_pages_write_hdr(int fd, uint64_t data_len, struct ferry_err *err);
int img_pages_check_hdr(int fd, const char *name, uint64_t *data_len, struct ferry_err *err);

/* Image names. */
void img_name(char *buf, size_t size, const char *prefix, unsigned id);

/*
 * Wait up to timeout_ms until the image directory dir is complete: a dump
 * publishes inventory.img last, so its appearance means every image is there.
 * dir need not exist yet. ETIMEDOUT (with dir in the message) if it is not;
 * ECANCELED as soon as cancel_fd (-1: none) is readable or hung up.
 */
int img_wait_complete(const char *dir, int timeout_ms, int cancel_fd, struct ferry_err *err);

#endif
