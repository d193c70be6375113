/*
 * Unit tests of the page-server codec (src/net/wire.c) and hello/auth
 * (src/net/auth.c): every message survives a round trip, and every
 * malformed header, length, count, address, name and string is refused
 * with a message that says what is wrong.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/auth.h"
#include "net/wire.h"

#define assert_msg_has(err, sub)                                                                   \
	do {                                                                                       \
		if (!strstr((err)->msg, (sub)))                                                    \
			fail_msg("error \"%s\" does not contain \"%s\"", (err)->msg, (sub));       \
	} while (0)

static uint8_t buf[WIRE_HDR_SIZE + WIRE_MAX_CTRL];

/* Encode m, decode it back into out; returns what the decoder said. */
static int round_trip(struct wire_msg *m, struct wire_msg *out, struct ferry_err *err)
{
	int n = wire_encode(m, buf, sizeof(buf), err);

	if (n < 0)
		return n;
	memset(out, 0xa5, sizeof(*out));
	int r = wire_hdr_decode(buf, &out->h, err);
	if (r < 0)
		return r;
	size_t want = wire_has_data(out->h.type) ? (size_t)wire_fixed_len(out->h.type) : out->h.len;
	assert_int_equal(n, WIRE_HDR_SIZE + want);
	return wire_decode(out, buf + WIRE_HDR_SIZE, want, err);
}

/* Decode raw bytes: header then payload as given. */
static int decode_raw(const uint8_t *b, size_t len, struct wire_msg *out, struct ferry_err *err)
{
	int r = wire_hdr_decode(b, &out->h, err);
	if (r < 0)
		return r;
	return wire_decode(out, b + WIRE_HDR_SIZE, len - WIRE_HDR_SIZE, err);
}

static void put_hdr(uint8_t *b, uint32_t magic, uint16_t type, uint16_t flags, uint32_t id,
		    uint32_t len)
{
	magic = htole32(magic);
	type = htole16(type);
	flags = htole16(flags);
	id = htole32(id);
	len = htole32(len);
	memcpy(b, &magic, 4);
	memcpy(b + 4, &type, 2);
	memcpy(b + 6, &flags, 2);
	memcpy(b + 8, &id, 4);
	memcpy(b + 12, &len, 4);
}

static void test_header_round_trip_and_little_endian(void **state)
{
	struct wire_hdr h = {.type = WT_GET, .flags = WF_URGENT, .id = 0x01020304, .len = 24}, h2;
	struct ferry_err err;
	uint8_t b[WIRE_HDR_SIZE];

	wire_hdr_encode(b, &h);
	assert_memory_equal(b, "FRPS", 4);
	assert_int_equal(b[8], 0x04); /* little-endian id */
	assert_int_equal(wire_hdr_decode(b, &h2, &err), 0);
	assert_int_equal(h2.type, WT_GET);
	assert_int_equal(h2.flags, WF_URGENT);
	assert_int_equal(h2.id, 0x01020304);
	assert_int_equal(h2.len, 24);
}

static void test_header_refuses_bad_magic_type_flags(void **state)
{
	struct wire_hdr h;
	struct ferry_err err;
	uint8_t b[WIRE_HDR_SIZE];

	put_hdr(b, 0x12345678, WT_OK, 0, 1, 0);
	assert_int_equal(wire_hdr_decode(b, &h, &err), -EPROTO);
	assert_msg_has(&err, "not a ferry page-server message");
	put_hdr(b, WIRE_MAGIC, 99, 0, 1, 0);
	assert_int_equal(wire_hdr_decode(b, &h, &err), -EPROTO);
	assert_msg_has(&err, "unknown message type 99");
	put_hdr(b, WIRE_MAGIC, 0, 0, 1, 0);
	assert_int_equal(wire_hdr_decode(b, &h, &err), -EPROTO);
	put_hdr(b, WIRE_MAGIC, 7, 0, 1, 0); /* a hole in the numbering */
	assert_int_equal(wire_hdr_decode(b, &h, &err), -EPROTO);
	put_hdr(b, WIRE_MAGIC, WT_OPEN, WF_URGENT, 1, 16);
	assert_int_equal(wire_hdr_decode(b, &h, &err), -EPROTO);
	assert_msg_has(&err, "unknown flags");
	put_hdr(b, WIRE_MAGIC, WT_GET, 0x80, 1, 24);
	assert_int_equal(wire_hdr_decode(b, &h, &err), -EPROTO);
}

static void test_header_refuses_bad_lengths(void **state)
{
	struct wire_hdr h;
	struct ferry_err err;
	uint8_t b[WIRE_HDR_SIZE];

	put_hdr(b, WIRE_MAGIC, WT_COMMIT, 0, 1, 17);
	assert_int_equal(wire_hdr_decode(b, &h, &err), -EPROTO);
	assert_msg_has(&err, "length 17, expected 16");
	put_hdr(b, WIRE_MAGIC, WT_OK, 0, 1, 0xffffffff);
	assert_int_equal(wire_hdr_decode(b, &h, &err), -EPROTO);
	put_hdr(b, WIRE_MAGIC, WT_OPEN, 0, 1, WIRE_MAX_CTRL + 1);
	assert_int_equal(wire_hdr_decode(b, &h, &err), -EPROTO);
	put_hdr(b, WIRE_MAGIC, WT_OPEN, 0, 1, 15);
	assert_int_equal(wire_hdr_decode(b, &h, &err), -EPROTO);
	put_hdr(b, WIRE_MAGIC, WT_ADD_PAGES, 0, 1, 16 + 4095);
	assert_int_equal(wire_hdr_decode(b, &h, &err), -EPROTO);
	put_hdr(b, WIRE_MAGIC, WT_ADD_PAGES, 0, 1, 16 + (WIRE_MAX_DATA_PAGES + 1) * 4096);
	assert_int_equal(wire_hdr_decode(b, &h, &err), -EPROTO);
	put_hdr(b, WIRE_MAGIC, WT_ADD_PAGES, 0, 1, 8);
	assert_int_equal(wire_hdr_decode(b, &h, &err), -EPROTO);
	put_hdr(b, WIRE_MAGIC, WT_ADD_PAGES, 0, 1, 16 + WIRE_MAX_DATA_PAGES * 4096);
	assert_int_equal(wire_hdr_decode(b, &h, &err), 0);
}

static void test_every_message_round_trips(void **state)
{
	struct ferry_err err;
	struct wire_msg m, out;

	m = (struct wire_msg){.h = {.type = WT_HELLO, .id = 5}};
	m.u.hello = (struct wire_hello){.version = 1, .role = WROLE_PULL, .features = 0x8000000000000005ull};
	for (int i = 0; i < WIRE_NONCE_SIZE; i++)
		m.u.hello.nonce[i] = i * 7;
	assert_int_equal(round_trip(&m, &out, &err), 0);
	assert_int_equal(out.h.id, 5);
	assert_int_equal(out.u.hello.role, WROLE_PULL);
	assert_true(out.u.hello.features == 0x8000000000000005ull);
	assert_memory_equal(out.u.hello.nonce, m.u.hello.nonce, WIRE_NONCE_SIZE);

	m = (struct wire_msg){.h = {.type = WT_OPEN, .id = 6}};
	m.u.open.pid = 4242;
	strcpy(m.u.open.snapshot_id, "0123456789abcdef0123456789abcdef");
	strcpy(m.u.open.parent_snapshot_id, "fedcba");
	strcpy(m.u.open.dir, "d2");
	strcpy(m.u.open.parent_dir, "pre 1 (old)");
	assert_int_equal(round_trip(&m, &out, &err), 0);
	assert_int_equal(out.u.open.pid, 4242);
	assert_string_equal(out.u.open.snapshot_id, m.u.open.snapshot_id);
	assert_string_equal(out.u.open.parent_snapshot_id, "fedcba");
	assert_string_equal(out.u.open.dir, "d2");
	assert_string_equal(out.u.open.parent_dir, "pre 1 (old)");

	unsigned runs[] = {WT_ADD_HOLE, WT_ADD_ZERO, WT_ADD_ABSENT, WT_ADD_LAZY};
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		m = (struct wire_msg){.h = {.type = runs[i], .id = 7}};
		m.u.run = (struct wire_run){0x7fff00000000ull, 1ull << 30};
		assert_int_equal(round_trip(&m, &out, &err), 0);
		assert_true(out.u.run.vaddr == 0x7fff00000000ull && out.u.run.nr_pages == 1ull << 30);
	}

	m = (struct wire_msg){.h = {.type = WT_ADD_PAGES, .id = 8}};
	m.u.run = (struct wire_run){0x400000, 3};
	assert_int_equal(round_trip(&m, &out, &err), 0);
	assert_int_equal(out.h.len, 16 + 3 * 4096);
	assert_int_equal(wire_data_len(&out), 3 * 4096);

	m = (struct wire_msg){.h = {.type = WT_PAGES, .flags = WF_LAST, .id = 9}};
	m.u.pages = (struct wire_pages){0x1000, 64, WKIND_PRESENT};
	assert_int_equal(round_trip(&m, &out, &err), 0);
	assert_int_equal(wire_data_len(&out), 64 * 4096);
	assert_int_equal(out.h.flags, WF_LAST);
	m.u.pages = (struct wire_pages){0x1000, 1 << 20, WKIND_ZERO};
	assert_int_equal(round_trip(&m, &out, &err), 0);
	assert_int_equal(wire_data_len(&out), 0);

	m = (struct wire_msg){.h = {.type = WT_GET, .flags = WF_URGENT, .id = 10}};
	m.u.get = (struct wire_get){77, 0x5000, 16};
	assert_int_equal(round_trip(&m, &out, &err), 0);
	assert_true(out.u.get.pid == 77 && out.u.get.vaddr == 0x5000 && out.u.get.nr_pages == 16);

	m = (struct wire_msg){.h = {.type = WT_PARENT_EXISTS, .id = 11}};
	m.u.parent.pid = 1;
	strcpy(m.u.parent.dir, "pre1");
	assert_int_equal(round_trip(&m, &out, &err), 0);
	assert_string_equal(out.u.parent.dir, "pre1");
	assert_string_equal(out.u.parent.snapshot_id, "");

	m = (struct wire_msg){.h = {.type = WT_PARENT_INFO, .id = 11}};
	m.u.exists = 1;
	assert_int_equal(round_trip(&m, &out, &err), 0);
	assert_int_equal(out.u.exists, 1);

	m = (struct wire_msg){.h = {.type = WT_ERROR, .id = 12}};
	m.u.error.code = WE_HOLE;
	strcpy(m.u.error.text, "hole\nwith a newline");
	assert_int_equal(round_trip(&m, &out, &err), 0);
	assert_int_equal(out.u.error.code, WE_HOLE);
	assert_string_equal(out.u.error.text, "hole?with a newline");

	m = (struct wire_msg){.h = {.type = WT_DATA_HASH, .id = 15}};
	m.u.hash = (struct wire_data_hash){WIRE_MAX_HASHED, 0xfedcba9876543210ull};
	assert_int_equal(round_trip(&m, &out, &err), 0);
	assert_int_equal(out.h.len, 16);
	assert_int_equal(wire_data_len(&out), 0);
	assert_true(out.u.hash.len == WIRE_MAX_HASHED && out.u.hash.xxh3 == 0xfedcba9876543210ull);

	m = (struct wire_msg){.h = {.type = WT_COMMIT, .id = 13}};
	m.u.commit = (struct wire_commit){12345, 678};
	assert_int_equal(round_trip(&m, &out, &err), 0);
	assert_true(out.u.commit.pages == 12345 && out.u.commit.runs == 678);

	unsigned simple[] = {WT_OK, WT_CLOSE, WT_NOT_FOUND, WT_AUTH, WT_AUTH_OK, WT_HELLO_REPLY};
	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
		m = (struct wire_msg){.h = {.type = simple[i], .id = 14}};
		if (simple[i] == WT_NOT_FOUND)
			m.u.vaddr = 0x10000;
		assert_int_equal(round_trip(&m, &out, &err), 0);
		assert_int_equal(out.h.type, simple[i]);
	}
}

static void test_encoder_refuses_what_a_peer_would_refuse(void **state)
{
	struct ferry_err err;
	struct wire_msg m = {.h = {.type = WT_ADD_PAGES}};

	m.u.run = (struct wire_run){0x1000, WIRE_MAX_DATA_PAGES + 1};
	assert_true(wire_encode(&m, buf, sizeof(buf), &err) < 0);
	m = (struct wire_msg){.h = {.type = WT_OPEN}};
	m.u.open.pid = 1;
	strcpy(m.u.open.dir, "..");
	assert_true(wire_encode(&m, buf, sizeof(buf), &err) < 0);
	assert_msg_has(&err, "starts with '.'");
	m.h.type = 200;
	assert_true(wire_encode(&m, buf, sizeof(buf), &err) < 0);
	m = (struct wire_msg){.h = {.type = WT_OK}};
	assert_true(wire_encode(&m, buf, 8, &err) < 0);
}

/* An OPEN message whose fields are raw byte strings. */
static size_t raw_open(uint8_t *b, uint32_t pid, uint32_t flags, const char *s[4],
		       const size_t lens[4], size_t extra)
{
	size_t off = WIRE_HDR_SIZE;
	uint32_t v;

	v = htole32(pid);
	memcpy(b + off, &v, 4);
	v = htole32(flags);
	memcpy(b + off + 4, &v, 4);
	off += 8;
	for (int i = 0; i < 4; i++) {
		uint16_t n = htole16(lens[i]);
		memcpy(b + off, &n, 2);
		memcpy(b + off + 2, s[i], lens[i]);
		off += 2 + lens[i];
	}
	memset(b + off, 0, extra);
	off += extra;
	put_hdr(b, WIRE_MAGIC, WT_OPEN, 0, 1, off - WIRE_HDR_SIZE);
	return off;
}

static int open_with(const char *dir, size_t dirlen, const char *parent, const char *snap,
		     struct ferry_err *err)
{
	const char *s[4] = {snap, "", dir, parent};
	size_t lens[4] = {strlen(snap), 0, dirlen, strlen(parent)};
	struct wire_msg out;
	size_t n = raw_open(buf, 42, 0, s, lens, 0);

	return decode_raw(buf, n, &out, err);
}

static void test_open_refuses_hostile_names(void **state)
{
	struct ferry_err err;
	char longname[300];

	assert_int_equal(open_with("d1", 2, "", "", &err), 0);
	assert_int_equal(open_with("..", 2, "", "", &err), -EINVAL);
	assert_int_equal(open_with(".", 1, "", "", &err), -EINVAL);
	assert_int_equal(open_with(".ferry-ps-1-1", 13, "", "", &err), -EINVAL);
	assert_int_equal(open_with("a/b", 3, "", "", &err), -EINVAL);
	assert_msg_has(&err, "contains '/'");
	assert_int_equal(open_with("/etc", 4, "", "", &err), -EINVAL);
	assert_int_equal(open_with("a\0b", 3, "", "", &err), -EINVAL);
	assert_msg_has(&err, "byte 0");
	assert_int_equal(open_with("a\nb", 3, "", "", &err), -EINVAL);
	assert_int_equal(open_with("a\x7f", 2, "", "", &err), -EINVAL);
	assert_int_equal(open_with("", 0, "", "", &err), -EINVAL);
	assert_msg_has(&err, "is empty");
	memset(longname, 'x', sizeof(longname));
	assert_int_equal(open_with(longname, 255, "", "", &err), 0);
	assert_int_equal(open_with(longname, 256, "", "", &err), -EPROTO);
	assert_int_equal(open_with("d2", 2, "../d1", "", &err), -EINVAL);
	assert_msg_has(&err, "parent directory name");
	assert_int_equal(open_with("d2", 2, "d1", "abc/def", &err), -EINVAL);
	assert_msg_has(&err, "snapshot id");
}

static void test_open_refuses_bad_fields_and_framing(void **state)
{
	const char *s[4] = {"", "", "d1", ""};
	size_t lens[4] = {0, 0, 2, 0};
	struct ferry_err err;
	struct wire_msg out;
	size_t n;

	n = raw_open(buf, 0, 0, s, lens, 0);
	assert_int_equal(decode_raw(buf, n, &out, &err), -EINVAL);
	assert_msg_has(&err, "pid 0");
	n = raw_open(buf, WIRE_MAX_PID + 1, 0, s, lens, 0);
	assert_int_equal(decode_raw(buf, n, &out, &err), -EINVAL);
	n = raw_open(buf, 1, 4, s, lens, 0);
	assert_int_equal(decode_raw(buf, n, &out, &err), -EPROTO);
	assert_msg_has(&err, "open flags");
	n = raw_open(buf, 1, 0, s, lens, 3); /* trailing bytes */
	assert_int_equal(decode_raw(buf, n, &out, &err), -EPROTO);
	assert_msg_has(&err, "after the last field");
	/* a string length beyond the payload */
	n = raw_open(buf, 1, 0, s, lens, 0);
	buf[WIRE_HDR_SIZE + 8 + 2 + 2 + 0] = 200; /* dir length: 200 bytes, only 4 left */
	assert_int_equal(decode_raw(buf, n, &out, &err), -EPROTO);
	/* the decoder gets fewer bytes than the header says */
	n = raw_open(buf, 1, 0, s, lens, 0);
	struct wire_hdr h;
	assert_int_equal(wire_hdr_decode(buf, &h, &err), 0);
	out.h = h;
	assert_int_equal(wire_decode(&out, buf + WIRE_HDR_SIZE, n - WIRE_HDR_SIZE - 1, &err), -EPROTO);
	/* a parent snapshot without a parent */
	const char *s2[4] = {"", "abc", "d1", ""};
	size_t l2[4] = {0, 3, 2, 0};
	n = raw_open(buf, 1, 0, s2, l2, 0);
	assert_int_equal(decode_raw(buf, n, &out, &err), -EINVAL);
}

static int run_msg(unsigned type, uint64_t vaddr, uint64_t nr, uint32_t len,
		   struct ferry_err *err)
{
	struct wire_msg out;
	uint64_t v;

	put_hdr(buf, WIRE_MAGIC, type, 0, 1, len);
	v = htole64(vaddr);
	memcpy(buf + WIRE_HDR_SIZE, &v, 8);
	v = htole64(nr);
	memcpy(buf + WIRE_HDR_SIZE + 8, &v, 8);
	int r = wire_hdr_decode(buf, &out.h, err);
	if (r < 0)
		return r;
	return wire_decode(&out, buf + WIRE_HDR_SIZE, 16, err);
}

static void test_runs_refuse_bad_addresses_and_counts(void **state)
{
	struct ferry_err err;

	assert_int_equal(run_msg(WT_ADD_PAGES, 0x1000, 2, 16 + 2 * 4096, &err), 0);
	assert_int_equal(run_msg(WT_ADD_PAGES, 0x1000, 3, 16 + 2 * 4096, &err), -EPROTO);
	assert_msg_has(&err, "3 pages but");
	assert_int_equal(run_msg(WT_ADD_PAGES, 0x1001, 1, 16 + 4096, &err), -EINVAL);
	assert_msg_has(&err, "not page-aligned");
	assert_int_equal(run_msg(WT_ADD_PAGES, 0x1000, 0, 16, &err), -EINVAL);
	assert_int_equal(run_msg(WT_ADD_HOLE, 0x1000, 0, 16, &err), -EINVAL);
	assert_int_equal(run_msg(WT_ADD_ZERO, 0x1000, WIRE_MAX_RUN_PAGES + 1, 16, &err), -EINVAL);
	assert_int_equal(run_msg(WT_ADD_ZERO, WIRE_MAX_ADDR - 4096, 2, 16, &err), -EINVAL);
	assert_msg_has(&err, "beyond the address space");
	assert_int_equal(run_msg(WT_ADD_ZERO, WIRE_MAX_ADDR - 4096, 1, 16, &err), 0);
	assert_int_equal(run_msg(WT_ADD_LAZY, 0xfffffffffffff000ull, 1, 16, &err), -EINVAL);
	assert_int_equal(run_msg(WT_ADD_HOLE, 0x1000, 1, 17, &err), -EPROTO);
}

static void test_other_messages_refuse_bad_fields(void **state)
{
	struct ferry_err err;
	struct wire_msg m, out;

	/* HELLO with an unknown role; HELLO_REPLY with any role */
	m = (struct wire_msg){.h = {.type = WT_HELLO}};
	m.u.hello.version = 1;
	m.u.hello.role = WROLE_PUSH;
	int n = wire_encode(&m, buf, sizeof(buf), &err);
	assert_true(n > 0);
	buf[WIRE_HDR_SIZE + 2] = 9;
	assert_int_equal(decode_raw(buf, n, &out, &err), -EPROTO);
	assert_msg_has(&err, "role 9");
	buf[WIRE_HDR_SIZE + 2] = 1;
	buf[WIRE_HDR_SIZE + 4] = 1; /* reserved */
	assert_int_equal(decode_raw(buf, n, &out, &err), -EPROTO);
	assert_msg_has(&err, "reserved");

	/* PAGES: unknown kind, data length disagreeing with the count */
	m = (struct wire_msg){.h = {.type = WT_PAGES}};
	m.u.pages = (struct wire_pages){0x1000, 1, WKIND_PRESENT};
	n = wire_encode(&m, buf, sizeof(buf), &err);
	assert_true(n > 0);
	buf[WIRE_HDR_SIZE + 16] = 2;
	assert_int_equal(decode_raw(buf, n, &out, &err), -EPROTO);
	assert_msg_has(&err, "page kind");
	m.u.pages = (struct wire_pages){0x1000, 2, WKIND_ZERO};
	n = wire_encode(&m, buf, sizeof(buf), &err);
	put_hdr(buf, WIRE_MAGIC, WT_PAGES, 0, 1, 24 + 4096);
	assert_int_equal(decode_raw(buf, n, &out, &err), -EPROTO);

	/* PARENT_INFO other than 0/1, NOT_FOUND unaligned, GET without pid */
	m = (struct wire_msg){.h = {.type = WT_PARENT_INFO}};
	n = wire_encode(&m, buf, sizeof(buf), &err);
	buf[WIRE_HDR_SIZE] = 2;
	assert_int_equal(decode_raw(buf, n, &out, &err), -EPROTO);
	m = (struct wire_msg){.h = {.type = WT_NOT_FOUND}};
	n = wire_encode(&m, buf, sizeof(buf), &err);
	buf[WIRE_HDR_SIZE] = 1;
	assert_int_equal(decode_raw(buf, n, &out, &err), -EINVAL);
	m = (struct wire_msg){.h = {.type = WT_GET}};
	m.u.get = (struct wire_get){5, 0x1000, 1};
	n = wire_encode(&m, buf, sizeof(buf), &err);
	memset(buf + WIRE_HDR_SIZE, 0, 4);
	assert_int_equal(decode_raw(buf, n, &out, &err), -EINVAL);

	/* ERROR whose text is longer than allowed, or than the message */
	put_hdr(buf, WIRE_MAGIC, WT_ERROR, 0, 1, 6 + 600);
	memset(buf + WIRE_HDR_SIZE, 0, 4);
	uint16_t tl = htole16(600);
	memcpy(buf + WIRE_HDR_SIZE + 4, &tl, 2);
	assert_int_equal(decode_raw(buf, WIRE_HDR_SIZE + 606, &out, &err), -EPROTO);
	put_hdr(buf, WIRE_MAGIC, WT_ERROR, 0, 1, 6 + 10);
	tl = htole16(20);
	memcpy(buf + WIRE_HDR_SIZE + 4, &tl, 2);
	assert_int_equal(decode_raw(buf, WIRE_HDR_SIZE + 16, &out, &err), -EPROTO);
}

static void test_data_hash_covers_whole_pages_within_limit(void **state)
{
	struct ferry_err err;
	struct wire_msg m = {.h = {.type = WT_DATA_HASH}}, out;
	uint64_t bad[] = {0, 4095, 4097, WIRE_MAX_HASHED + WIRE_PAGE, 1ull << 63};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		m.u.hash = (struct wire_data_hash){bad[i], 1};
		assert_true(wire_encode(&m, buf, sizeof(buf), &err) < 0);
		m.u.hash.len = WIRE_PAGE;
		int n = wire_encode(&m, buf, sizeof(buf), &err);
		assert_int_equal(n, WIRE_HDR_SIZE + 16);
		uint64_t le = htole64(bad[i]);
		memcpy(buf + WIRE_HDR_SIZE, &le, 8);
		assert_int_equal(decode_raw(buf, n, &out, &err), -EINVAL);
		assert_msg_has(&err, "whole pages");
	}
	put_hdr(buf, WIRE_MAGIC, WT_DATA_HASH, 0, 1, 24); /* no data follows a hash */
	assert_int_equal(wire_hdr_decode(buf, &out.h, &err), -EPROTO);
	assert_msg_has(&err, "expected 16");
	put_hdr(buf, WIRE_MAGIC, WT_DATA_HASH, WF_LAST, 1, 16);
	assert_int_equal(wire_hdr_decode(buf, &out.h, &err), -EPROTO);
}

static void test_auth_proofs_depend_on_key_role_and_nonces(void **state)
{
	struct wire_key k1 = {.len = 16}, k2 = {.len = 16};
	uint8_t a[WIRE_NONCE_SIZE] = {1}, b[WIRE_NONCE_SIZE] = {2};
	uint8_t p1[WIRE_PROOF_SIZE], p2[WIRE_PROOF_SIZE];

	memset(k1.data, 'k', 16);
	memset(k2.data, 'k', 16);
	k2.data[15] = 'K';
	wire_auth_proof(&k1, 0, a, b, p1);
	wire_auth_proof(&k1, 0, a, b, p2);
	assert_memory_equal(p1, p2, sizeof(p1));
	wire_auth_proof(&k2, 0, a, b, p2);
	assert_memory_not_equal(p1, p2, sizeof(p1));
	wire_auth_proof(&k1, 1, a, b, p2); /* a client's proof is not a server's */
	assert_memory_not_equal(p1, p2, sizeof(p1));
	wire_auth_proof(&k1, 0, b, a, p2);
	assert_memory_not_equal(p1, p2, sizeof(p1));
}

struct server_side {
	int fd;
	const struct wire_key *key;
	uint64_t features, agreed; /* offered, agreed */
	int r;
	struct ferry_err err;
};

static void *server_thread(void *arg)
{
	struct server_side *s = arg;
	uint16_t role;

	s->r = wire_server_hello(s->fd, "client", s->features, s->key, 5000, &role, &s->agreed,
				 &s->err);
	return NULL;
}

/* Run the hello over a socketpair, the client offering cf, the server sf; returns the
 * client's result, and in *agreed what the client agreed on. */
static int hello_features(const struct wire_key *ck, const struct wire_key *sk, uint64_t cf,
			  uint64_t sf, uint64_t *agreed, struct server_side *s,
			  struct ferry_err *err)
{
	int sv[2];
	pthread_t t;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	*s = (struct server_side){.fd = sv[1], .key = sk, .features = sf};
	pthread_create(&t, NULL, server_thread, s);
	int r = wire_client_hello(sv[0], "server", WROLE_PUSH, cf, ck, agreed, err);
	close(sv[0]);
	pthread_join(t, NULL);
	close(sv[1]);
	return r;
}

static int hello_pair(const struct wire_key *ck, const struct wire_key *sk, struct server_side *s,
		      struct ferry_err *err)
{
	uint64_t agreed;

	return hello_features(ck, sk, 0, 0, &agreed, s, err);
}

static void test_hello_agrees_on_data_hash_only_when_both_offer_it(void **state)
{
	struct server_side s;
	struct ferry_err err;
	uint64_t agreed;

	assert_int_equal(hello_features(NULL, NULL, WFEAT_DATA_HASH, WFEAT_DATA_HASH, &agreed, &s,
					&err), 0);
	assert_int_equal(s.r, 0);
	assert_true(agreed == WFEAT_DATA_HASH && s.agreed == WFEAT_DATA_HASH);
	/* an older server does not know the bit: the client sends no DATA_HASH */
	assert_int_equal(hello_features(NULL, NULL, WFEAT_DATA_HASH, 0, &agreed, &s, &err), 0);
	assert_true(agreed == 0 && s.agreed == 0);
	/* an older client: the server hashes the data itself */
	assert_int_equal(hello_features(NULL, NULL, 0, WFEAT_DATA_HASH, &agreed, &s, &err), 0);
	assert_true(agreed == 0 && s.agreed == 0);
}

static void test_hello_with_and_without_keys(void **state)
{
	struct wire_key *k1 = calloc(1, sizeof(*k1)), *k2 = calloc(1, sizeof(*k2));
	struct server_side s;
	struct ferry_err err;

	k1->len = k2->len = 32;
	memset(k1->data, 1, 32);
	memset(k2->data, 2, 32);
	assert_int_equal(hello_pair(NULL, NULL, &s, &err), 0);
	assert_int_equal(s.r, 0);
	assert_int_equal(hello_pair(k1, k1, &s, &err), 0);
	assert_int_equal(s.r, 0);

	assert_int_equal(hello_pair(k1, k2, &s, &err), -EACCES);
	assert_msg_has(&err, "authentication failed");
	assert_int_equal(s.r, -EACCES);
	assert_msg_has(&s.err, "authentication failed");

	assert_int_equal(hello_pair(NULL, k1, &s, &err), -EACCES);
	assert_msg_has(&err, "requires an auth key");
	assert_true(s.r < 0);
	assert_int_equal(hello_pair(k1, NULL, &s, &err), -EACCES);
	assert_msg_has(&err, "no auth key");
	assert_true(s.r < 0);
	free(k1);
	free(k2);
}

static void test_hello_of_another_version_is_refused_on_both_sides(void **state)
{
	struct server_side s;
	struct ferry_err err;
	struct wire_msg m = {.h = {.type = WT_HELLO, .id = 1}};
	pthread_t t;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	s = (struct server_side){.fd = sv[1]};
	pthread_create(&t, NULL, server_thread, &s);
	m.u.hello.version = 2;
	m.u.hello.role = WROLE_PUSH;
	assert_int_equal(wire_send_msg(sv[0], &m, "server", &err), 0);
	assert_int_equal(wire_recv_msg(sv[0], &m, 5000, false, "server", &err), 0);
	pthread_join(t, NULL);
	assert_int_equal(m.h.type, WT_ERROR);
	assert_int_equal(m.u.error.code, WE_VERSION);
	assert_non_null(strstr(m.u.error.text, "version 1, the client 2"));
	assert_true(s.r < 0);
	assert_msg_has(&s.err, "version 1, the client 2");
	close(sv[0]);
	close(sv[1]);
}

static void test_recv_names_the_peer_on_truncation(void **state)
{
	struct ferry_err err;
	struct wire_msg m;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	put_hdr(buf, WIRE_MAGIC, WT_COMMIT, 0, 1, 16);
	assert_int_equal(write(sv[0], buf, WIRE_HDR_SIZE + 5), WIRE_HDR_SIZE + 5);
	close(sv[0]);
	assert_true(wire_recv_msg(sv[1], &m, 1000, true, "10.0.0.2:27000", &err) < 0);
	assert_msg_has(&err, "10.0.0.2:27000 closed the connection in the middle of a message");
	close(sv[1]);

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[0]);
	assert_int_equal(wire_recv_msg(sv[1], &m, 1000, true, "p", &err), -ENODATA);
	close(sv[1]);

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(wire_recv_msg(sv[1], &m, 100, true, "p", &err), -ETIMEDOUT);
	assert_msg_has(&err, "stalled");
	close(sv[0]);
	close(sv[1]);
}

/* A connection over loopback has its peer on this host; a socket without an IP peer has none. */
static void test_peer_on_loopback_is_local(void **state)
{
	struct ferry_err err = {0};
	char peer[128];
	int lfd = -1, cfd = -1, afd, sv[2];

	(void)state;
	assert_int_equal(wire_listen("127.0.0.1", 0, &lfd, &err), 0);
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
	assert_int_equal(wire_connect("127.0.0.1", ntohs(a.sin_port), 2000, &cfd, peer,
				      sizeof(peer), &err),
			 0);
	afd = accept(lfd, NULL, NULL);
	assert_true(afd >= 0);
	assert_true(wire_peer_is_local(cfd));
	assert_true(wire_peer_is_local(afd));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_false(wire_peer_is_local(sv[0]));
	close(sv[0]);
	close(sv[1]);
	close(afd);
	close(cfd);
	close(lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_round_trip_and_little_endian),
		cmocka_unit_test(test_header_refuses_bad_magic_type_flags),
		cmocka_unit_test(test_header_refuses_bad_lengths),
		cmocka_unit_test(test_every_message_round_trips),
		cmocka_unit_test(test_encoder_refuses_what_a_peer_would_refuse),
		cmocka_unit_test(test_open_refuses_hostile_names),
		cmocka_unit_test(test_open_refuses_bad_fields_and_framing),
		cmocka_unit_test(test_runs_refuse_bad_addresses_and_counts),
		cmocka_unit_test(test_other_messages_refuse_bad_fields),
		cmocka_unit_test(test_data_hash_covers_whole_pages_within_limit),
		cmocka_unit_test(test_hello_agrees_on_data_hash_only_when_both_offer_it),
		cmocka_unit_test(test_auth_proofs_depend_on_key_role_and_nonces),
		cmocka_unit_test(test_hello_with_and_without_keys),
		cmocka_unit_test(test_hello_of_another_version_is_refused_on_both_sides),
		cmocka_unit_test(test_recv_names_the_peer_on_truncation),
		cmocka_unit_test(test_peer_on_loopback_is_local),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
