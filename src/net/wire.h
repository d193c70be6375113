/*
 * The page-server wire format (docs/protocol.md): a 16-byte header on every
 * message, then a payload whose first part has a fixed layout per type; the
 * two data-carrying types (ADD_PAGES, PAGES) are followed by raw page data.
 *
 * The codec turns bytes into struct wire_msg and back. Decoding trusts
 * nothing: wire_hdr_decode() checks the magic, the type, the flags and the
 * length against the type's limits before the caller reads the payload, and
 * wire_decode() checks every field (names, ids, counts, addresses) and that
 * the payload holds exactly what its fields say. Every string in a decoded
 * message is NUL-terminated and valid per the protocol's rules.
 *
 * The socket helpers name the peer ("10.0.0.2:27000") in every error.
 */
#ifndef FERRY_NET_WIRE_H
#define FERRY_NET_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/err.h"

#define WIRE_MAGIC 0x53505246u /* "FRPS" in little-endian byte order */
#define WIRE_VERSION 1
#define WIRE_HDR_SIZE 16

#define WIRE_NONCE_SIZE 32
#define WIRE_PROOF_SIZE 32
#define WIRE_MAX_CTRL 2048          /* payload of a message without data */
#define WIRE_MAX_DATA_PAGES 1024    /* pages in one ADD_PAGES or PAGES */
#define WIRE_URGENT_PAGES 64        /* pages in one answer to an urgent GET */
#define WIRE_MAX_HASHED (WIRE_MAX_DATA_PAGES * WIRE_PAGE) /* data bytes one DATA_HASH covers */
#define WIRE_MAX_RUN_PAGES (1ULL << 36)
#define WIRE_MAX_ADDR (1ULL << 57)
#define WIRE_MAX_PID 4194304u
#define WIRE_MAX_NAME 255
#define WIRE_MAX_SNAP 64
#define WIRE_MAX_TEXT 512
#define WIRE_PAGE 4096u

enum wire_type {
	WT_HELLO = 1,
	WT_HELLO_REPLY = 2,
	WT_AUTH = 3,
	WT_AUTH_OK = 4,
	WT_ERROR = 5,
	WT_OK = 6,
	WT_OPEN = 16,
	WT_ADD_PAGES = 17,
	WT_ADD_HOLE = 18,
	WT_ADD_ZERO = 19,
	WT_ADD_ABSENT = 20,
	WT_ADD_LAZY = 21,
	WT_PARENT_EXISTS = 22,
	WT_PARENT_INFO = 23,
	WT_GET = 24,
	WT_PAGES = 25,
	WT_NOT_FOUND = 26,
	WT_COMMIT = 27,
	WT_CLOSE = 28,
	WT_DATA_HASH = 29,
};

/* Header flags. */
#define WF_URGENT 0x1u /* GET: a page fault */
#define WF_LAST 0x2u   /* PAGES: the last answer to its GET */

/* Feature bits (HELLO, HELLO_REPLY). */
#define WFEAT_AUTH 0x1ull
#define WFEAT_LAZY 0x2ull
#define WFEAT_URGENT 0x4ull
#define WFEAT_DATA_HASH 0x8ull /* the pusher sends DATA_HASH for all its page data */
#define WFEAT_KNOWN (WFEAT_AUTH | WFEAT_LAZY | WFEAT_URGENT | WFEAT_DATA_HASH)

enum wire_role { WROLE_PUSH = 1, WROLE_PULL = 2, WROLE_URGENT = 3 };

/* PAGES kinds: the image's page-run flags. */
#define WKIND_PRESENT 0x1u
#define WKIND_ZERO 0x8u

enum wire_err_code {
	WE_PROTO = 1,
	WE_VERSION = 2,
	WE_AUTH = 3,
	WE_UNSUPPORTED = 4,
	WE_BAD_NAME = 5,
	WE_BUSY = 6,
	WE_NO_PARENT = 7,
	WE_PARENT_MISMATCH = 8,
	WE_HOLE = 9,
	WE_IO = 10,
	WE_LIMIT = 11,
	WE_STATE = 12,
};

struct wire_hdr {
	uint16_t type;
	uint16_t flags;
	uint32_t id;
	uint32_t len; /* payload bytes, data included */
};

struct wire_hello {
	uint16_t version;
	uint16_t role;     /* HELLO only */
	uint64_t features;
	uint8_t nonce[WIRE_NONCE_SIZE];
};

struct wire_open {
	uint32_t pid;
	uint32_t flags;
	char snapshot_id[WIRE_MAX_SNAP + 1];
	char parent_snapshot_id[WIRE_MAX_SNAP + 1];
	char dir[WIRE_MAX_NAME + 1];
	char parent_dir[WIRE_MAX_NAME + 1]; /* "" when there is no parent */
};

/* ADD_PAGES (data follows), ADD_HOLE, ADD_ZERO, ADD_ABSENT, ADD_LAZY */
struct wire_run {
	uint64_t vaddr;
	uint64_t nr_pages;
};

struct wire_error {
	uint32_t code;
	char text[WIRE_MAX_TEXT + 1];
};

struct wire_parent_query {
	uint32_t pid;
	char dir[WIRE_MAX_NAME + 1];
	char snapshot_id[WIRE_MAX_SNAP + 1];
};

struct wire_get {
	uint32_t pid;
	uint64_t vaddr;
	uint64_t nr_pages;
};

struct wire_pages {
	uint64_t vaddr;
	uint64_t nr_pages;
	uint32_t kind; /* WKIND_PRESENT (data follows) or WKIND_ZERO */
};

/* The XXH3-64 of the len bytes of page data sent since the previous DATA_HASH. */
struct wire_data_hash {
	uint64_t len;
	uint64_t xxh3;
};

struct wire_commit {
	uint64_t pages; /* data pages sent */
	uint64_t runs;  /* runs sent (all kinds but absent) */
};

struct wire_msg {
	struct wire_hdr h;
	union {
		struct wire_hello hello;                /* HELLO, HELLO_REPLY */
		uint8_t proof[WIRE_PROOF_SIZE];          /* AUTH, AUTH_OK */
		struct wire_error error;
		struct wire_open open;
		struct wire_run run;                    /* ADD_* */
		struct wire_parent_query parent;        /* PARENT_EXISTS */
		uint32_t exists;                        /* PARENT_INFO */
		struct wire_get get;
		struct wire_pages pages;
		uint64_t vaddr;                         /* NOT_FOUND */
		struct wire_commit commit;
		struct wire_data_hash hash;             /* DATA_HASH */
		uint32_t status;                        /* CLOSE */
	} u;
};

const char *wire_type_name(unsigned type);
const char *wire_err_name(unsigned code);

/* Bytes of the fixed payload part of a type (what wire_decode needs), or -1
 * for an unknown type. For ADD_PAGES and PAGES the data follows it. */
int wire_fixed_len(unsigned type);
/* True for ADD_PAGES and PAGES. */
bool wire_has_data(unsigned type);
/* For a decoded ADD_PAGES or PAGES: bytes of data after the fixed part. */
uint64_t wire_data_len(const struct wire_msg *m);

/*
 * Header: encode always succeeds; decode checks magic, type, flags and the
 * length against the type (for control messages the exact size or the
 * string-payload limit; for data messages at most fixed + 4 MiB).
 */
void wire_hdr_encode(uint8_t out[WIRE_HDR_SIZE], const struct wire_hdr *h);
int wire_hdr_decode(const uint8_t in[WIRE_HDR_SIZE], struct wire_hdr *h, struct ferry_err *err);

/*
 * Payload: buf holds the fixed part for data messages (wire_fixed_len bytes),
 * else the whole payload (h->len bytes). m->h must be the decoded header.
 * Returns 0 or a negative errno with err naming what is wrong.
 */
int wire_decode(struct wire_msg *m, const uint8_t *buf, size_t len, struct ferry_err *err);

/*
 * Encode header and payload (without page data) of m into buf; m->h.type,
 * flags and id are used, m->h.len is computed (data included) and stored.
 * Returns the bytes written, or a negative errno if a field is invalid or
 * buf is too small (WIRE_HDR_SIZE + WIRE_MAX_CTRL always suffices).
 */
int wire_encode(struct wire_msg *m, uint8_t *buf, size_t size, struct ferry_err *err);

/* Validation shared with callers: 0 or -EINVAL with err saying why. */
int wire_check_name(const char *what, const char *s, size_t len, bool may_be_empty,
		    struct ferry_err *err);
int wire_check_snapshot(const char *what, const char *s, size_t len, struct ferry_err *err);
int wire_check_range(uint64_t vaddr, uint64_t nr_pages, uint64_t max_pages,
		     struct ferry_err *err);

/* ---- sockets ---- */

#define WIRE_CONNECT_TIMEOUT_MS 10000
#define WIRE_IDLE_TIMEOUT_MS 120000

/* Connect to addr:port (a name or a numeric address) within timeout_ms; the
 * socket is tuned (wire_tune). peer receives "addr:port". */
int wire_connect(const char *addr, int port, int timeout_ms, int *fd, char *peer,
		 size_t peer_size, struct ferry_err *err);
/* A listening socket on addr (NULL: every address) and port. */
int wire_listen(const char *addr, int port, int *fd, struct ferry_err *err);
/* TCP_NODELAY, SO_KEEPALIVE (10 s idle, 5 s interval, 3 probes), TCP_USER_TIMEOUT 30 s. */
void wire_tune(int fd);
/* "addr:port" of the other end. */
void wire_peer_name(int fd, char *buf, size_t size);
/* The peer runs on this host: a loopback address, or the socket's own address. */
bool wire_peer_is_local(int fd);

/* Send all of iov (modified), without SIGPIPE. */
int wire_sendv(int fd, struct iovec *iov, int n, const char *peer, struct ferry_err *err);
int wire_send(int fd, const void *buf, size_t len, const char *peer, struct ferry_err *err);
/*
 * The refusal of a peer that sent nothing for timeout_ms, and of one that
 * closed the connection (mid_message: in the middle of a message): every
 * receiver of the protocol says these in the same words.
 */
int wire_stalled(const char *peer, int timeout_ms, struct ferry_err *err);
int wire_closed(const char *peer, bool mid_message, struct ferry_err *err);

/*
 * Receive exactly len bytes, waiting at most timeout_ms (-1: forever) for
 * each piece. EOF before the first byte with eof_ok set returns -ENODATA
 * (an orderly end); anywhere else it is an error ("closed the connection").
 */
int wire_recv(int fd, void *buf, size_t len, int timeout_ms, bool eof_ok, const char *peer,
	      struct ferry_err *err);

/* Encode and send one message without data. */
int wire_send_msg(int fd, struct wire_msg *m, const char *peer, struct ferry_err *err);
/* Send ERROR(code, text) with request id; best effort, errors ignored. */
void wire_send_error(int fd, uint32_t id, uint32_t code, const char *text);
/* Send OK with request id. */
int wire_send_ok(int fd, uint32_t id, const char *peer, struct ferry_err *err);
/*
 * Receive one message: its header and fixed part, decoded. The data of
 * ADD_PAGES/PAGES (wire_data_len bytes) is left for the caller to read.
 */
int wire_recv_msg(int fd, struct wire_msg *m, int timeout_ms, bool eof_ok, const char *peer,
		  struct ferry_err *err);

/*
 * A reader for the latency-bound paths (a fault's request and its answer):
 * one receive takes whatever the socket holds, whole messages are handed out
 * from its buffer, so a request or a one-page answer costs one system call
 * instead of two or three. Messages longer than the buffer are refused.
 */
struct wire_reader {
	uint8_t *buf;
	size_t cap, start, end; /* buffered bytes: buf[start..end) */
};
int wire_reader_init(struct wire_reader *r, size_t cap);
void wire_reader_free(struct wire_reader *r);
/*
 * The next message on fd: header and fixed part decoded into m, its data
 * (wire_data_len(m) bytes) at *data, inside the reader's buffer and valid
 * until the next call. Receives only when no whole message is buffered:
 * blocking with timeout_ms -1, else without waiting first and then at most
 * timeout_ms. EOF between messages with eof_ok: -ENODATA.
 */
int wire_reader_next(struct wire_reader *r, int fd, struct wire_msg *m, const uint8_t **data,
		     int timeout_ms, bool eof_ok, const char *peer, struct ferry_err *err);
/* A whole message is buffered: poll would not say so. */
bool wire_reader_ready(const struct wire_reader *r);

#endif
