/*
 * Sockets for the page-server protocol: connect with a time limit, listen,
 * the TCP options that notice a vanished peer, and exact reads and writes
 * whose errors name the peer. Writes never raise SIGPIPE (MSG_NOSIGNAL).
 */
#include "net/wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void wire_tune(int fd)
{
	int one = 1, idle = 10, intvl = 5, cnt = 3;
	unsigned user_timeout = 30000;

	/* best effort: a socket without them still works, it only notices a dead peer later */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
}

static void sockaddr_name(const struct sockaddr *sa, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(buf, size, "%s:%u", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(buf, size, "[%s]:%u", host, port);
	} else {
		snprintf(buf, size, "(unknown peer)");
	}
}

/* The address of a socket's end, without the port, for comparing two ends. */
static bool end_addr(int fd, bool peer, struct sockaddr_storage *ss, const void **a, size_t *n)
{
	socklen_t len = sizeof(*ss);

	if ((peer ? getpeername : getsockname)(fd, (struct sockaddr *)ss, &len) < 0)
		return false;
	if (ss->ss_family == AF_INET) {
		*a = &((struct sockaddr_in *)ss)->sin_addr;
		*n = sizeof(struct in_addr);
	} else if (ss->ss_family == AF_INET6) {
		*a = &((struct sockaddr_in6 *)ss)->sin6_addr;
		*n = sizeof(struct in6_addr);
	} else {
		return false;
	}
	return true;
}

bool wire_peer_is_local(int fd)
{
	struct sockaddr_storage me, peer;
	const void *a, *b;
	size_t na, nb;

	if (!end_addr(fd, true, &peer, &b, &nb) || !end_addr(fd, false, &me, &a, &na))
		return false;
	if (peer.ss_family == AF_INET && ((const uint8_t *)b)[0] == 127)
		return true;
	if (peer.ss_family == AF_INET6) {
		const struct in6_addr *p6 = b;
		if (IN6_IS_ADDR_LOOPBACK(p6) || (IN6_IS_ADDR_V4MAPPED(p6) && p6->s6_addr[12] == 127))
			return true;
	}
	return na == nb && !memcmp(a, b, na);
}

void wire_peer_name(int fd, char *buf, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		snprintf(buf, size, "(unknown peer)");
	else
		sockaddr_name((struct sockaddr *)&ss, buf, size);
}

static int connect_one(const struct addrinfo *ai, int timeout_ms, int *out,
		       struct ferry_err *err, const char *peer)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			ai->ai_protocol);
	struct pollfd p;
	int soerr = 0, r;
	socklen_t len = sizeof(soerr);

	if (fd < 0)
		return ferry_fail_errno(err, "socket for %s", peer);
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
		r = ferry_fail_errno(err, "connect to %s", peer);
		close(fd);
		return r;
	}
	p = (struct pollfd){.fd = fd, .events = POLLOUT};
	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r == 0) {
		close(fd);
		return ferry_fail(err, ETIMEDOUT, "connect to %s (no answer within %d s)", peer,
				  timeout_ms / 1000);
	}
	if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 || soerr) {
		r = ferry_fail(err, soerr ? soerr : errno, "connect to %s", peer);
		close(fd);
		return r;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	wire_tune(fd);
	*out = fd;
	return 0;
}

int wire_connect(const char *addr, int port, int timeout_ms, int *fd, char *peer,
		 size_t peer_size, struct ferry_err *err)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
	char service[16];
	int r;

	snprintf(peer, peer_size, "%s:%d", addr, port);
	snprintf(service, sizeof(service), "%d", port);
	r = getaddrinfo(addr, service, &hints, &res);
	if (r)
		return ferry_refuse(err, EHOSTUNREACH, "cannot resolve %s: %s", addr,
				    gai_strerror(r));
	r = -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		r = connect_one(ai, timeout_ms, fd, err, peer);
		if (r == 0)
			break;
	}
	freeaddrinfo(res);
	return r;
}

int wire_listen(const char *addr, int port, int *out, struct ferry_err *err)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
	char service[16];
	int one = 1, r;

	snprintf(service, sizeof(service), "%d", port);
	r = getaddrinfo(addr, service, &hints, &res);
	if (r)
		return ferry_refuse(err, EINVAL, "cannot resolve %s: %s", addr ? addr : "*",
				    gai_strerror(r));
	/* without --address, prefer the IPv6 wildcard that also takes IPv4 */
	struct addrinfo *ai = res;
	for (struct addrinfo *a = res; !addr && a; a = a->ai_next)
		if (a->ai_family == AF_INET6)
			ai = a;
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0) {
		freeaddrinfo(res);
		return ferry_fail_errno(err, "socket");
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ai->ai_family == AF_INET6 && !addr) {
		int zero = 0;
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	}
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
		r = ferry_fail_errno(err, "listen on %s port %d", addr ? addr : "*", port);
		close(fd);
		freeaddrinfo(res);
		return r;
	}
	freeaddrinfo(res);
	*out = fd;
	return 0;
}

int wire_sendv(int fd, struct iovec *iov, int n, const char *peer, struct ferry_err *err)
{
	while (n > 0) {
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = n};
		ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return ferry_fail(err, ETIMEDOUT, "send to %s (peer stalled)", peer);
			return ferry_fail_errno(err, "send to %s", peer);
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= w;
		}
	}
	return 0;
}

int wire_send(int fd, const void *buf, size_t len, const char *peer, struct ferry_err *err)
{
	struct iovec iov = {(void *)buf, len};
	return wire_sendv(fd, &iov, 1, peer, err);
}

int wire_stalled(const char *peer, int timeout_ms, struct ferry_err *err)
{
	return ferry_refuse(err, ETIMEDOUT, "%s sent nothing for %d s: dropped as stalled", peer,
			    timeout_ms / 1000);
}

int wire_closed(const char *peer, bool mid_message, struct ferry_err *err)
{
	return ferry_refuse(err, ECONNRESET, "%s closed the connection %s", peer,
			    mid_message ? "in the middle of a message" : "unexpectedly");
}

/* Wait up to timeout_ms (-1: forever) for fd to be readable (EINTR: 0, look again). */
static int wait_readable(int fd, int timeout_ms, const char *peer, struct ferry_err *err)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int n = poll(&p, 1, timeout_ms);

	if (n < 0 && errno != EINTR)
		return ferry_fail_errno(err, "wait for %s", peer);
	return n == 0 ? wire_stalled(peer, timeout_ms, err) : 0;
}

int wire_recv(int fd, void *buf, size_t len, int timeout_ms, bool eof_ok, const char *peer,
	      struct ferry_err *err)
{
	size_t done = 0;

	while (done < len) {
		/* take what is there; wait (bounded) only when nothing is */
		ssize_t got = recv(fd, (char *)buf + done, len - done, MSG_DONTWAIT);
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int r = wait_readable(fd, timeout_ms, peer, err);
			if (r < 0)
				return r;
			continue;
		}
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return ferry_fail_errno(err, "receive from %s", peer);
		}
		if (got == 0)
			return done == 0 && eof_ok ? -ENODATA : wire_closed(peer, done, err);
		done += got;
	}
	return 0;
}

int wire_send_msg(int fd, struct wire_msg *m, const char *peer, struct ferry_err *err)
{
	uint8_t buf[WIRE_HDR_SIZE + WIRE_MAX_CTRL];
	int n = wire_encode(m, buf, sizeof(buf), err);

	if (n < 0)
		return n;
	return wire_send(fd, buf, n, peer, err);
}

void wire_send_error(int fd, uint32_t id, uint32_t code, const char *text)
{
	struct wire_msg m = {.h = {.type = WT_ERROR, .id = id}};
	struct ferry_err err;

	m.u.error.code = code;
	snprintf(m.u.error.text, sizeof(m.u.error.text), "%s", text);
	wire_send_msg(fd, &m, "peer", &err);
}

int wire_recv_msg(int fd, struct wire_msg *m, int timeout_ms, bool eof_ok, const char *peer,
		  struct ferry_err *err)
{
	uint8_t hdr[WIRE_HDR_SIZE], payload[WIRE_MAX_CTRL];
	int r;

	r = wire_recv(fd, hdr, sizeof(hdr), timeout_ms, eof_ok, peer, err);
	if (r < 0)
		return r;
	r = wire_hdr_decode(hdr, &m->h, err);
	if (r < 0)
		return ferry_wrap(err, "from %s", peer);
	size_t want = wire_has_data(m->h.type) ? (size_t)wire_fixed_len(m->h.type) : m->h.len;
	r = wire_recv(fd, payload, want, timeout_ms, false, peer, err);
	if (r < 0)
		return r;
	r = wire_decode(m, payload, want, err);
	if (r < 0)
		return ferry_wrap(err, "from %s", peer);
	return 0;
}

int wire_send_ok(int fd, uint32_t id, const char *peer, struct ferry_err *err)
{
	struct wire_msg ok = {.h = {.type = WT_OK, .id = id}};

	return wire_send_msg(fd, &ok, peer, err);
}

int wire_reader_init(struct wire_reader *r, size_t cap)
{
	r->buf = malloc(cap);
	r->cap = cap;
	r->start = r->end = 0;
	return r->buf ? 0 : -ENOMEM;
}

void wire_reader_free(struct wire_reader *r)
{
	free(r->buf);
	r->buf = NULL;
}

/* The length of the whole message at the start of the buffer, 0 if its
 * header is not all there yet; fills h. */
static int buffered_len(const struct wire_reader *r, struct wire_hdr *h, size_t *total,
			const char *peer, struct ferry_err *err)
{
	*total = 0;
	if (r->end - r->start < WIRE_HDR_SIZE)
		return 0;
	if (wire_hdr_decode(r->buf + r->start, h, err) < 0)
		return ferry_wrap(err, "from %s", peer);
	*total = WIRE_HDR_SIZE + (size_t)h->len;
	if (*total > r->cap)
		return ferry_refuse(err, EPROTO, "%s sent %s of %u bytes: more than %zu here",
				    peer, wire_type_name(h->type), h->len, r->cap - WIRE_HDR_SIZE);
	return 0;
}

bool wire_reader_ready(const struct wire_reader *r)
{
	struct wire_hdr h;
	struct ferry_err err;
	size_t total;

	return buffered_len(r, &h, &total, "", &err) < 0 ||
	       (total && r->end - r->start >= total);
}

/* Receive more into the buffer: -ENODATA at an orderly EOF. */
static int reader_fill(struct wire_reader *r, int fd, int timeout_ms, bool eof_ok,
		       const char *peer, struct ferry_err *err)
{
	/* what is left of a message moves to the front: then any message fits */
	if (r->start) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
	}
	for (;;) {
		ssize_t got = recv(fd, r->buf + r->end, r->cap - r->end,
				   timeout_ms < 0 ? 0 : MSG_DONTWAIT);
		if (got > 0) {
			r->end += got;
			return 0;
		}
		if (got == 0) {
			bool mid = r->start != r->end;
			return !mid && eof_ok ? -ENODATA : wire_closed(peer, mid, err);
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return ferry_fail_errno(err, "receive from %s", peer);
		int n = wait_readable(fd, timeout_ms, peer, err);
		if (n < 0)
			return n;
	}
}

int wire_reader_next(struct wire_reader *r, int fd, struct wire_msg *m, const uint8_t **data,
		     int timeout_ms, bool eof_ok, const char *peer, struct ferry_err *err)
{
	size_t total;
	int ret;

	for (;;) {
		ret = buffered_len(r, &m->h, &total, peer, err);
		if (ret < 0)
			return ret;
		if (total && r->end - r->start >= total)
			break;
		ret = reader_fill(r, fd, timeout_ms, eof_ok && r->start == r->end, peer, err);
		if (ret < 0)
			return ret;
	}
	const uint8_t *payload = r->buf + r->start + WIRE_HDR_SIZE;
	size_t fixed = wire_has_data(m->h.type) ? (size_t)wire_fixed_len(m->h.type) : m->h.len;
	ret = wire_decode(m, payload, fixed, err);
	if (ret < 0)
		return ferry_wrap(err, "from %s", peer);
	if (WIRE_HDR_SIZE + fixed + wire_data_len(m) != total)
		return ferry_refuse(err, EPROTO, "%s sent %s whose length %u does not match its pages",
				    peer, wire_type_name(m->h.type), m->h.len);
	*data = payload + fixed;
	r->start += total;
	return 0;
}
