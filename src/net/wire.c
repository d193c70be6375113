/*
 * The page-server codec: bytes <-> struct wire_msg (see wire.h and
 * docs/protocol.md). Encoders write through a bounded cursor; decoders read
 * through one that refuses to step past the payload, so a length field can
 * never take a read outside the bytes actually received.
 */
#include "net/wire.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

struct cursor {
	uint8_t *p;
	size_t left;
	bool bad; /* a read or write went past the end */
};

static void put(struct cursor *c, const void *v, size_t n)
{
	if (c->bad || n > c->left) {
		c->bad = true;
		return;
	}
	memcpy(c->p, v, n);
	c->p += n;
	c->left -= n;
}

static void put_u16(struct cursor *c, uint16_t v)
{
	v = htole16(v);
	put(c, &v, 2);
}

static void put_u32(struct cursor *c, uint32_t v)
{
	v = htole32(v);
	put(c, &v, 4);
}

static void put_u64(struct cursor *c, uint64_t v)
{
	v = htole64(v);
	put(c, &v, 8);
}

static void put_str(struct cursor *c, const char *s)
{
	size_t n = strlen(s);

	put_u16(c, n);
	put(c, s, n);
}

static void get(struct cursor *c, void *v, size_t n)
{
	if (c->bad || n > c->left) {
		c->bad = true;
		memset(v, 0, n);
		return;
	}
	memcpy(v, c->p, n);
	c->p += n;
	c->left -= n;
}

static uint16_t get_u16(struct cursor *c)
{
	uint16_t v;
	get(c, &v, 2);
	return le16toh(v);
}

static uint32_t get_u32(struct cursor *c)
{
	uint32_t v;
	get(c, &v, 4);
	return le32toh(v);
}

static uint64_t get_u64(struct cursor *c)
{
	uint64_t v;
	get(c, &v, 8);
	return le64toh(v);
}

/* A string into out[cap]; its length is returned in *len. Too long: bad. */
static void get_str(struct cursor *c, char *out, size_t cap, size_t *len)
{
	uint16_t n = get_u16(c);

	*len = n;
	out[0] = '\0';
	if (c->bad || n >= cap || n > c->left) {
		c->bad = true;
		return;
	}
	memcpy(out, c->p, n);
	out[n] = '\0';
	c->p += n;
	c->left -= n;
}

static const struct type_info {
	const char *name;
	int fixed;      /* exact payload size, or minimum for variable ones */
	bool variable;  /* strings: fixed..WIRE_MAX_CTRL */
	bool data;      /* page data follows the fixed part */
	uint16_t flags; /* allowed header flags */
} types[] = {
	[WT_HELLO] = {"HELLO", 48, false, false, 0},
	[WT_HELLO_REPLY] = {"HELLO_REPLY", 48, false, false, 0},
	[WT_AUTH] = {"AUTH", WIRE_PROOF_SIZE, false, false, 0},
	[WT_AUTH_OK] = {"AUTH_OK", WIRE_PROOF_SIZE, false, false, 0},
	[WT_ERROR] = {"ERROR", 6, true, false, 0},
	[WT_OK] = {"OK", 0, false, false, 0},
	[WT_OPEN] = {"OPEN", 16, true, false, 0},
	[WT_ADD_PAGES] = {"ADD_PAGES", 16, false, true, 0},
	[WT_ADD_HOLE] = {"ADD_HOLE", 16, false, false, 0},
	[WT_ADD_ZERO] = {"ADD_ZERO", 16, false, false, 0},
	[WT_ADD_ABSENT] = {"ADD_ABSENT", 16, false, false, 0},
	[WT_ADD_LAZY] = {"ADD_LAZY", 16, false, false, 0},
	[WT_PARENT_EXISTS] = {"PARENT_EXISTS", 12, true, false, 0},
	[WT_PARENT_INFO] = {"PARENT_INFO", 8, false, false, 0},
	[WT_GET] = {"GET", 24, false, false, WF_URGENT},
	[WT_PAGES] = {"PAGES", 24, false, true, WF_LAST},
	[WT_NOT_FOUND] = {"NOT_FOUND", 8, false, false, 0},
	[WT_COMMIT] = {"COMMIT", 16, false, false, 0},
	[WT_CLOSE] = {"CLOSE", 4, false, false, 0},
	[WT_DATA_HASH] = {"DATA_HASH", 16, false, false, 0},
};

static const struct type_info *type_info(unsigned type)
{
	if (type >= sizeof(types) / sizeof(types[0]) || !types[type].name)
		return NULL;
	return &types[type];
}

const char *wire_type_name(unsigned type)
{
	const struct type_info *t = type_info(type);
	return t ? t->name : "unknown";
}

const char *wire_err_name(unsigned code)
{
	static const char *names[] = {
		[WE_PROTO] = "protocol error",   [WE_VERSION] = "version mismatch",
		[WE_AUTH] = "authentication",    [WE_UNSUPPORTED] = "unsupported",
		[WE_BAD_NAME] = "bad name",      [WE_BUSY] = "busy",
		[WE_NO_PARENT] = "no parent",    [WE_PARENT_MISMATCH] = "parent mismatch",
		[WE_HOLE] = "hole not in parent", [WE_IO] = "I/O error",
		[WE_LIMIT] = "limit exceeded",   [WE_STATE] = "out of order",
	};
	if (code < sizeof(names) / sizeof(names[0]) && names[code])
		return names[code];
	return "error";
}

int wire_fixed_len(unsigned type)
{
	const struct type_info *t = type_info(type);
	return t ? t->fixed : -1;
}

bool wire_has_data(unsigned type)
{
	const struct type_info *t = type_info(type);
	return t && t->data;
}

uint64_t wire_data_len(const struct wire_msg *m)
{
	if (m->h.type == WT_ADD_PAGES)
		return m->u.run.nr_pages * WIRE_PAGE;
	if (m->h.type == WT_PAGES && m->u.pages.kind == WKIND_PRESENT)
		return m->u.pages.nr_pages * WIRE_PAGE;
	return 0;
}

void wire_hdr_encode(uint8_t out[WIRE_HDR_SIZE], const struct wire_hdr *h)
{
	struct cursor c = {out, WIRE_HDR_SIZE, false};

	put_u32(&c, WIRE_MAGIC);
	put_u16(&c, h->type);
	put_u16(&c, h->flags);
	put_u32(&c, h->id);
	put_u32(&c, h->len);
}

int wire_hdr_decode(const uint8_t in[WIRE_HDR_SIZE], struct wire_hdr *h, struct ferry_err *err)
{
	struct cursor c = {(uint8_t *)in, WIRE_HDR_SIZE, false};
	uint32_t magic = get_u32(&c);
	const struct type_info *t;

	h->type = get_u16(&c);
	h->flags = get_u16(&c);
	h->id = get_u32(&c);
	h->len = get_u32(&c);
	if (magic != WIRE_MAGIC)
		return ferry_refuse(err, EPROTO, "not a ferry page-server message (magic %#x)",
				    magic);
	t = type_info(h->type);
	if (!t)
		return ferry_refuse(err, EPROTO, "unknown message type %u", h->type);
	if (h->flags & ~t->flags)
		return ferry_refuse(err, EPROTO, "message %s with unknown flags %#x", t->name,
				    h->flags);
	if (t->data) {
		uint64_t data = h->len >= (uint32_t)t->fixed ? h->len - t->fixed : 0;
		if (h->len < (uint32_t)t->fixed || data % WIRE_PAGE ||
		    data > (uint64_t)WIRE_MAX_DATA_PAGES * WIRE_PAGE)
			return ferry_refuse(err, EPROTO,
					    "message %s: length %u is not %d + up to %u pages",
					    t->name, h->len, t->fixed, WIRE_MAX_DATA_PAGES);
	} else if (t->variable) {
		if (h->len < (uint32_t)t->fixed || h->len > WIRE_MAX_CTRL)
			return ferry_refuse(err, EPROTO,
					    "message %s: length %u is outside %d..%d", t->name,
					    h->len, t->fixed, WIRE_MAX_CTRL);
	} else if (h->len != (uint32_t)t->fixed) {
		return ferry_refuse(err, EPROTO, "message %s: length %u, expected %d", t->name,
				    h->len, t->fixed);
	}
	return 0;
}

int wire_check_name(const char *what, const char *s, size_t len, bool may_be_empty,
		    struct ferry_err *err)
{
	if (len == 0)
		return may_be_empty ? 0 : ferry_refuse(err, EINVAL, "%s is empty", what);
	if (len > WIRE_MAX_NAME)
		return ferry_refuse(err, EINVAL, "%s is longer than %d bytes", what,
				    WIRE_MAX_NAME);
	if (s[0] == '.')
		return ferry_refuse(err, EINVAL, "%s '%.*s' starts with '.'", what, (int)len, s);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = s[i];
		if (ch == '/')
			return ferry_refuse(err, EINVAL, "%s '%.*s' contains '/'", what, (int)len,
					    s);
		if (ch < 0x20 || ch == 0x7f)
			return ferry_refuse(err, EINVAL, "%s contains byte %#x at %zu", what, ch,
					    i);
	}
	return 0;
}

int wire_check_snapshot(const char *what, const char *s, size_t len, struct ferry_err *err)
{
	if (len > WIRE_MAX_SNAP)
		return ferry_refuse(err, EINVAL, "%s is longer than %d bytes", what,
				    WIRE_MAX_SNAP);
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		bool ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
			  (ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '_';
		if (!ok)
			return ferry_refuse(err, EINVAL, "%s holds byte %#x at %zu", what,
					    (unsigned char)ch, i);
	}
	return 0;
}

int wire_check_range(uint64_t vaddr, uint64_t nr_pages, uint64_t max_pages,
		     struct ferry_err *err)
{
	if (vaddr % WIRE_PAGE)
		return ferry_refuse(err, EINVAL, "address %#llx is not page-aligned",
				    (unsigned long long)vaddr);
	if (nr_pages == 0 || nr_pages > max_pages)
		return ferry_refuse(err, EINVAL, "%llu pages at %#llx (limit %llu)",
				    (unsigned long long)nr_pages, (unsigned long long)vaddr,
				    (unsigned long long)max_pages);
	/* nr_pages <= 2^36, so the product cannot overflow */
	if (vaddr >= WIRE_MAX_ADDR || nr_pages * WIRE_PAGE > WIRE_MAX_ADDR - vaddr)
		return ferry_refuse(err, EINVAL, "pages %#llx + %llu go beyond the address space",
				    (unsigned long long)vaddr, (unsigned long long)nr_pages);
	return 0;
}

static int check_pid(uint32_t pid, struct ferry_err *err)
{
	if (pid == 0 || pid > WIRE_MAX_PID)
		return ferry_refuse(err, EINVAL, "pid %u is out of range", pid);
	return 0;
}

static int decode_open(struct wire_open *o, struct cursor *c, struct ferry_err *err)
{
	size_t ls, lps, ld, lpd;

	o->pid = get_u32(c);
	o->flags = get_u32(c);
	get_str(c, o->snapshot_id, sizeof(o->snapshot_id), &ls);
	get_str(c, o->parent_snapshot_id, sizeof(o->parent_snapshot_id), &lps);
	get_str(c, o->dir, sizeof(o->dir), &ld);
	get_str(c, o->parent_dir, sizeof(o->parent_dir), &lpd);
	if (c->bad)
		return ferry_refuse(err, EPROTO, "a string is longer than its limit or the message");
	if (o->flags)
		return ferry_refuse(err, EPROTO, "unknown open flags %#x", o->flags);
	if (lps && !lpd)
		return ferry_refuse(err, EINVAL, "a parent snapshot id without a parent directory");
	return check_pid(o->pid, err) ?: wire_check_snapshot("snapshot id", o->snapshot_id, ls, err)
		?: wire_check_snapshot("parent snapshot id", o->parent_snapshot_id, lps, err)
		?: wire_check_name("image directory name", o->dir, ld, false, err)
		?: wire_check_name("parent directory name", o->parent_dir, lpd, true, err);
}

static int decode_error(struct wire_error *e, struct cursor *c, struct ferry_err *err)
{
	size_t n;

	e->code = get_u32(c);
	get_str(c, e->text, sizeof(e->text), &n);
	if (c->bad)
		return ferry_refuse(err, EPROTO, "error text longer than its limit or the message");
	/* for humans, on one log line */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)e->text[i] < 0x20 || e->text[i] == 0x7f)
			e->text[i] = '?';
	return 0;
}

static int decode_body(struct wire_msg *m, struct cursor *c, struct ferry_err *err)
{
	uint32_t reserved = 0;
	size_t n1, n2;

	switch (m->h.type) {
	case WT_HELLO:
	case WT_HELLO_REPLY:
		m->u.hello.version = get_u16(c);
		m->u.hello.role = get_u16(c);
		reserved = get_u32(c);
		m->u.hello.features = get_u64(c);
		get(c, m->u.hello.nonce, WIRE_NONCE_SIZE);
		if (m->h.type == WT_HELLO_REPLY ? m->u.hello.role != 0
						: m->u.hello.role < WROLE_PUSH ||
							  m->u.hello.role > WROLE_URGENT)
			return ferry_refuse(err, EPROTO, "unknown role %u", m->u.hello.role);
		break;
	case WT_AUTH:
	case WT_AUTH_OK:
		get(c, m->u.proof, WIRE_PROOF_SIZE);
		break;
	case WT_ERROR:
		return decode_error(&m->u.error, c, err);
	case WT_OK:
		break;
	case WT_OPEN:
		return decode_open(&m->u.open, c, err);
	case WT_ADD_PAGES:
	case WT_ADD_HOLE:
	case WT_ADD_ZERO:
	case WT_ADD_ABSENT:
	case WT_ADD_LAZY: {
		bool data = m->h.type == WT_ADD_PAGES;
		m->u.run.vaddr = get_u64(c);
		m->u.run.nr_pages = get_u64(c);
		int r = wire_check_range(m->u.run.vaddr, m->u.run.nr_pages,
					 data ? WIRE_MAX_DATA_PAGES : WIRE_MAX_RUN_PAGES, err);
		if (r < 0)
			return r;
		if (data && m->h.len != 16 + m->u.run.nr_pages * WIRE_PAGE)
			return ferry_refuse(err, EPROTO, "%llu pages but %u bytes of payload",
					    (unsigned long long)m->u.run.nr_pages, m->h.len);
		break;
	}
	case WT_PARENT_EXISTS:
		m->u.parent.pid = get_u32(c);
		reserved = get_u32(c);
		get_str(c, m->u.parent.dir, sizeof(m->u.parent.dir), &n1);
		get_str(c, m->u.parent.snapshot_id, sizeof(m->u.parent.snapshot_id), &n2);
		if (c->bad)
			return ferry_refuse(err, EPROTO, "a string is longer than its limit or the message");
		if (check_pid(m->u.parent.pid, err) < 0 ||
		    wire_check_name("parent directory name", m->u.parent.dir, n1, false, err) < 0 ||
		    wire_check_snapshot("parent snapshot id", m->u.parent.snapshot_id, n2, err) < 0)
			return -EINVAL;
		break;
	case WT_PARENT_INFO:
		m->u.exists = get_u32(c);
		reserved = get_u32(c);
		if (m->u.exists > 1)
			return ferry_refuse(err, EPROTO, "parent info %u is not 0 or 1", m->u.exists);
		break;
	case WT_GET:
		m->u.get.pid = get_u32(c);
		reserved = get_u32(c);
		m->u.get.vaddr = get_u64(c);
		m->u.get.nr_pages = get_u64(c);
		if (check_pid(m->u.get.pid, err) < 0 ||
		    wire_check_range(m->u.get.vaddr, m->u.get.nr_pages, WIRE_MAX_RUN_PAGES, err) < 0)
			return -EINVAL;
		break;
	case WT_PAGES: {
		struct wire_pages *p = &m->u.pages;
		p->vaddr = get_u64(c);
		p->nr_pages = get_u64(c);
		p->kind = get_u32(c);
		reserved = get_u32(c);
		if (p->kind != WKIND_PRESENT && p->kind != WKIND_ZERO)
			return ferry_refuse(err, EPROTO, "unknown page kind %#x", p->kind);
		int r = wire_check_range(p->vaddr, p->nr_pages,
					 p->kind == WKIND_PRESENT ? WIRE_MAX_DATA_PAGES
								  : WIRE_MAX_RUN_PAGES,
					 err);
		if (r < 0)
			return r;
		if (m->h.len != 24 + wire_data_len(m))
			return ferry_refuse(err, EPROTO, "%llu pages but %u bytes of payload",
					    (unsigned long long)p->nr_pages, m->h.len);
		break;
	}
	case WT_NOT_FOUND:
		m->u.vaddr = get_u64(c);
		if (m->u.vaddr % WIRE_PAGE || m->u.vaddr >= WIRE_MAX_ADDR)
			return ferry_refuse(err, EINVAL, "address %#llx is not a page address",
					    (unsigned long long)m->u.vaddr);
		break;
	case WT_COMMIT:
		m->u.commit.pages = get_u64(c);
		m->u.commit.runs = get_u64(c);
		break;
	case WT_CLOSE:
		m->u.status = get_u32(c);
		break;
	case WT_DATA_HASH:
		m->u.hash.len = get_u64(c);
		m->u.hash.xxh3 = get_u64(c);
		if (!m->u.hash.len || m->u.hash.len % WIRE_PAGE ||
		    m->u.hash.len > WIRE_MAX_HASHED)
			return ferry_refuse(err, EINVAL,
					    "hash of %llu bytes: not 1 to %u whole pages",
					    (unsigned long long)m->u.hash.len, WIRE_MAX_DATA_PAGES);
		break;
	default:
		return ferry_refuse(err, EPROTO, "unknown message type %u", m->h.type);
	}
	if (reserved)
		return ferry_refuse(err, EPROTO, "reserved field is %#x, not 0", reserved);
	return 0;
}

int wire_decode(struct wire_msg *m, const uint8_t *buf, size_t len, struct ferry_err *err)
{
	const struct type_info *t = type_info(m->h.type);
	struct cursor c = {(uint8_t *)buf, len, false};
	int r;

	if (!t)
		return ferry_refuse(err, EPROTO, "unknown message type %u", m->h.type);
	memset(&m->u, 0, sizeof(m->u));
	if (t->data ? len != (size_t)t->fixed : len != m->h.len)
		return ferry_refuse(err, EPROTO, "message %s: %zu payload bytes given, header says %u",
				    t->name, len, m->h.len);
	r = decode_body(m, &c, err);
	if (r == 0 && c.bad)
		r = ferry_refuse(err, EPROTO, "payload shorter than its fields");
	if (r == 0 && c.left)
		r = ferry_refuse(err, EPROTO, "%zu bytes after the last field", c.left);
	if (r < 0)
		return ferry_wrap(err, "message %s", t->name);
	return 0;
}

static void encode_body(const struct wire_msg *m, struct cursor *c)
{
	switch (m->h.type) {
	case WT_HELLO:
	case WT_HELLO_REPLY:
		put_u16(c, m->u.hello.version);
		put_u16(c, m->h.type == WT_HELLO ? m->u.hello.role : 0);
		put_u32(c, 0);
		put_u64(c, m->u.hello.features);
		put(c, m->u.hello.nonce, WIRE_NONCE_SIZE);
		break;
	case WT_AUTH:
	case WT_AUTH_OK:
		put(c, m->u.proof, WIRE_PROOF_SIZE);
		break;
	case WT_ERROR: {
		size_t n = strnlen(m->u.error.text, WIRE_MAX_TEXT);
		put_u32(c, m->u.error.code);
		put_u16(c, n);
		put(c, m->u.error.text, n);
		break;
	}
	case WT_OPEN:
		put_u32(c, m->u.open.pid);
		put_u32(c, m->u.open.flags);
		put_str(c, m->u.open.snapshot_id);
		put_str(c, m->u.open.parent_snapshot_id);
		put_str(c, m->u.open.dir);
		put_str(c, m->u.open.parent_dir);
		break;
	case WT_ADD_PAGES:
	case WT_ADD_HOLE:
	case WT_ADD_ZERO:
	case WT_ADD_ABSENT:
	case WT_ADD_LAZY:
		put_u64(c, m->u.run.vaddr);
		put_u64(c, m->u.run.nr_pages);
		break;
	case WT_PARENT_EXISTS:
		put_u32(c, m->u.parent.pid);
		put_u32(c, 0);
		put_str(c, m->u.parent.dir);
		put_str(c, m->u.parent.snapshot_id);
		break;
	case WT_PARENT_INFO:
		put_u32(c, m->u.exists);
		put_u32(c, 0);
		break;
	case WT_GET:
		put_u32(c, m->u.get.pid);
		put_u32(c, 0);
		put_u64(c, m->u.get.vaddr);
		put_u64(c, m->u.get.nr_pages);
		break;
	case WT_PAGES:
		put_u64(c, m->u.pages.vaddr);
		put_u64(c, m->u.pages.nr_pages);
		put_u32(c, m->u.pages.kind);
		put_u32(c, 0);
		break;
	case WT_NOT_FOUND:
		put_u64(c, m->u.vaddr);
		break;
	case WT_COMMIT:
		put_u64(c, m->u.commit.pages);
		put_u64(c, m->u.commit.runs);
		break;
	case WT_CLOSE:
		put_u32(c, m->u.status);
		break;
	case WT_DATA_HASH:
		put_u64(c, m->u.hash.len);
		put_u64(c, m->u.hash.xxh3);
		break;
	default:
		break;
	}
}

int wire_encode(struct wire_msg *m, uint8_t *buf, size_t size, struct ferry_err *err)
{
	const struct type_info *t = type_info(m->h.type);
	struct cursor c;
	struct ferry_err e2;
	struct wire_msg check;
	size_t payload;

	if (!t)
		return ferry_refuse(err, EINVAL, "cannot encode message type %u", m->h.type);
	if (size < WIRE_HDR_SIZE)
		return ferry_refuse(err, ENOSPC, "no room for a message header");
	c = (struct cursor){buf + WIRE_HDR_SIZE, size - WIRE_HDR_SIZE, false};
	encode_body(m, &c);
	if (c.bad)
		return ferry_refuse(err, ENOSPC, "message %s does not fit in %zu bytes", t->name,
				    size);
	payload = size - WIRE_HDR_SIZE - c.left;
	m->h.len = payload;
	if (m->h.type == WT_ADD_PAGES || m->h.type == WT_PAGES) {
		uint64_t data = wire_data_len(m);
		if (data > (uint64_t)WIRE_MAX_DATA_PAGES * WIRE_PAGE)
			return ferry_refuse(err, EINVAL, "message %s: %llu pages is too many",
					    t->name, (unsigned long long)data / WIRE_PAGE);
		m->h.len += data;
	}
	wire_hdr_encode(buf, &m->h);
	/* what we send must be what a peer accepts: decode it back */
	check.h = m->h;
	if (wire_hdr_decode(buf, &check.h, &e2) < 0 ||
	    wire_decode(&check, buf + WIRE_HDR_SIZE, payload, &e2) < 0) {
		*err = e2;
		return ferry_wrap(err, "cannot encode");
	}
	return WIRE_HDR_SIZE + payload;
}
