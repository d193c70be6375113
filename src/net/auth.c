/*
 * The hello exchange and the pre-shared-key challenge-response. Each side
 * contributes a fresh random nonce, so a recorded exchange cannot be
 * replayed; each side proves the key with an HMAC over both nonces, under a
 * label of its role, so a proof cannot be reflected back.
 */
#include "net/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <nettle/hmac.h>
#include <nettle/memops.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"

int wire_key_load(const char *path, struct wire_key *k, struct ferry_err *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	k->len = 0;
	if (fd < 0)
		return ferry_fail_errno(err, "open auth key %s", path);
	n = read(fd, k->data, sizeof(k->data));
	if (n < 0)
		return ferry_fail_errno(err, "read auth key %s", path);
	if (n == (ssize_t)sizeof(k->data)) {
		uint8_t more;
		if (read(fd, &more, 1) > 0)
			return ferry_refuse(err, EINVAL, "auth key %s is longer than %d bytes", path,
					    WIRE_KEY_MAX);
	}
	if (n < WIRE_KEY_MIN)
		return ferry_refuse(err, EINVAL,
				    "auth key %s holds %zd bytes; it needs at least %d (e.g. head -c 32 /dev/urandom)",
				    path, n, WIRE_KEY_MIN);
	k->len = n;
	return 0;
}

void wire_key_wipe(struct wire_key *k)
{
	explicit_bzero(k, sizeof(*k));
}

void wire_auth_proof(const struct wire_key *k, int server, const uint8_t a[WIRE_NONCE_SIZE],
		     const uint8_t b[WIRE_NONCE_SIZE], uint8_t out[WIRE_PROOF_SIZE])
{
	static const char client_label[] = "ferry-ps-client", server_label[] = "ferry-ps-server";
	const char *label = server ? server_label : client_label;
	struct hmac_sha256_ctx ctx;

	hmac_sha256_set_key(&ctx, k->len, k->data);
	hmac_sha256_update(&ctx, strlen(label), (const uint8_t *)label);
	hmac_sha256_update(&ctx, WIRE_NONCE_SIZE, a);
	hmac_sha256_update(&ctx, WIRE_NONCE_SIZE, b);
	hmac_sha256_digest(&ctx, WIRE_PROOF_SIZE, out);
	explicit_bzero(&ctx, sizeof(ctx));
}

static int make_nonce(uint8_t out[WIRE_NONCE_SIZE], struct ferry_err *err)
{
	size_t done = 0;

	while (done < WIRE_NONCE_SIZE) {
		ssize_t n = getrandom(out + done, WIRE_NONCE_SIZE - done, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ferry_fail_errno(err, "getrandom");
		done += n;
	}
	return 0;
}

/* An ERROR from the peer becomes our error; anything but `want` is a protocol error. */
static int expect(const struct wire_msg *m, unsigned want, const char *peer,
		  struct ferry_err *err)
{
	if (m->h.type == WT_ERROR)
		return ferry_refuse(err, m->u.error.code == WE_AUTH ? EACCES : EPROTO,
				    "%s refused: %s", peer, m->u.error.text);
	if (m->h.type != want)
		return ferry_refuse(err, EPROTO, "%s sent %s, expected %s", peer,
				    wire_type_name(m->h.type), wire_type_name(want));
	return 0;
}

int wire_client_hello(int fd, const char *peer, enum wire_role role, uint64_t features,
		      const struct wire_key *key, uint64_t *agreed, struct ferry_err *err)
{
	struct wire_msg m = {.h = {.type = WT_HELLO, .id = 1}};
	uint8_t nc[WIRE_NONCE_SIZE], proof[WIRE_PROOF_SIZE];
	int r;

	if (key)
		features |= WFEAT_AUTH;
	else
		features &= ~WFEAT_AUTH;
	r = make_nonce(nc, err);
	if (r < 0)
		return r;
	m.u.hello.version = WIRE_VERSION;
	m.u.hello.role = role;
	m.u.hello.features = features;
	memcpy(m.u.hello.nonce, nc, sizeof(nc));
	r = wire_send_msg(fd, &m, peer, err);
	if (r == 0)
		r = wire_recv_msg(fd, &m, WIRE_IDLE_TIMEOUT_MS, false, peer, err);
	if (r == 0)
		r = expect(&m, WT_HELLO_REPLY, peer, err);
	if (r < 0)
		return r;
	if (m.u.hello.version != WIRE_VERSION)
		return ferry_refuse(err, EPROTO,
				    "%s speaks page-server protocol version %u, this ferry %u",
				    peer, m.u.hello.version, WIRE_VERSION);
	if (key && !(m.u.hello.features & WFEAT_AUTH))
		return ferry_refuse(err, EACCES,
				    "%s does not authenticate (start it with --auth-key too)", peer);
	if (!key && (m.u.hello.features & WFEAT_AUTH))
		return ferry_refuse(err, EACCES, "%s requires an auth key (--auth-key)", peer);
	*agreed = m.u.hello.features & features;
	if (!key)
		return 0;

	uint8_t ns[WIRE_NONCE_SIZE];
	memcpy(ns, m.u.hello.nonce, sizeof(ns));
	m = (struct wire_msg){.h = {.type = WT_AUTH, .id = 2}};
	wire_auth_proof(key, 0, nc, ns, m.u.proof);
	r = wire_send_msg(fd, &m, peer, err);
	if (r == 0)
		r = wire_recv_msg(fd, &m, WIRE_IDLE_TIMEOUT_MS, false, peer, err);
	if (r == 0)
		r = expect(&m, WT_AUTH_OK, peer, err);
	if (r < 0)
		return r;
	wire_auth_proof(key, 1, ns, nc, proof);
	if (!memeql_sec(proof, m.u.proof, sizeof(proof)))
		return ferry_refuse(err, EACCES, "%s failed authentication: it holds another key",
				    peer);
	return 0;
}

static int refuse_peer(int fd, uint32_t code, struct ferry_err *err, const char *fmt,
		       const char *peer, const char *text)
{
	wire_send_error(fd, 0, code, text);
	return ferry_refuse(err, code == WE_AUTH ? EACCES : EPROTO, fmt, peer, text);
}

int wire_server_hello(int fd, const char *peer, uint64_t features, const struct wire_key *key,
		      int timeout_ms, uint16_t *role, uint64_t *agreed, struct ferry_err *err)
{
	struct wire_msg m;
	uint8_t ns[WIRE_NONCE_SIZE], nc[WIRE_NONCE_SIZE], proof[WIRE_PROOF_SIZE];
	char text[160];
	int r;

	if (key)
		features |= WFEAT_AUTH;
	r = wire_recv_msg(fd, &m, timeout_ms, true, peer, err);
	if (r == -ENODATA)
		return ferry_refuse(err, ECONNRESET, "%s closed the connection before its hello",
				    peer);
	if (r < 0) {
		wire_send_error(fd, 0, WE_PROTO, err->msg);
		return r;
	}
	if (m.h.type != WT_HELLO)
		return refuse_peer(fd, WE_PROTO, err, "%s: %s", peer,
				   "the connection must start with HELLO");
	if (m.u.hello.version != WIRE_VERSION) {
		snprintf(text, sizeof(text),
			 "server speaks page-server protocol version %u, the client %u",
			 WIRE_VERSION, m.u.hello.version);
		return refuse_peer(fd, WE_VERSION, err, "%s refused: %s", peer, text);
	}
	if (key && !(m.u.hello.features & WFEAT_AUTH))
		return refuse_peer(fd, WE_AUTH, err, "%s refused: %s", peer,
				   "this server requires an auth key (--auth-key)");
	if (!key && (m.u.hello.features & WFEAT_AUTH))
		return refuse_peer(fd, WE_AUTH, err, "%s refused: %s", peer,
				   "this server has no auth key; start it with --auth-key");
	*role = m.u.hello.role;
	*agreed = m.u.hello.features & features;
	memcpy(nc, m.u.hello.nonce, sizeof(nc));
	r = make_nonce(ns, err);
	if (r < 0)
		return r;
	m = (struct wire_msg){.h = {.type = WT_HELLO_REPLY, .id = m.h.id}};
	m.u.hello.version = WIRE_VERSION;
	m.u.hello.features = *agreed | (features & WFEAT_AUTH);
	memcpy(m.u.hello.nonce, ns, sizeof(ns));
	r = wire_send_msg(fd, &m, peer, err);
	if (r < 0 || !key)
		return r;
	r = wire_recv_msg(fd, &m, timeout_ms, false, peer, err);
	if (r < 0)
		return r;
	if (m.h.type != WT_AUTH)
		return refuse_peer(fd, WE_PROTO, err, "%s: %s", peer,
				   "authentication expected after the hello");
	wire_auth_proof(key, 0, nc, ns, proof);
	if (!memeql_sec(proof, m.u.proof, sizeof(proof)))
		return refuse_peer(fd, WE_AUTH, err, "%s refused: %s", peer,
				   "authentication failed (wrong --auth-key?)");
	uint32_t id = m.h.id;
	m = (struct wire_msg){.h = {.type = WT_AUTH_OK, .id = id}};
	wire_auth_proof(key, 1, ns, nc, m.u.proof);
	return wire_send_msg(fd, &m, peer, err);
}
