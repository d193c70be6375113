/*
 * /proc parsing.
 *
 * Every text parser walks one NUL-terminated text line by line, and each line
 * is a bounded span [p, end): no helper reads past a line's end or the text's
 * NUL. Numbers are parsed by hand rather than with strtoul(), which skips
 * blanks, accepts signs and saturates where ferry wants a clean failure. A
 * line that does not have the shape the kernel prints gives -EINVAL with the
 * line quoted in the message; keys this parser does not know (in status,
 * fdinfo and smaps) are skipped so that newer kernels still parse.
 *
 * What the maps parser guarantees about its result: every VMA is non-empty and
 * page-aligned, and VMAs are sorted by address without overlap.
 */
#include "proc/proc.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/util.h"

/* A bounded view of some text; p moves towards end and never past it. */
struct span {
	const char *p;
	const char *end;
};

static bool at_end(const struct span *s)
{
	return s->p >= s->end;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static void skip_blanks(struct span *s)
{
	while (s->p < s->end && is_blank(*s->p))
		s->p++;
}

static bool take_char(struct span *s, char c)
{
	if (s->p >= s->end || *s->p != c)
		return false;
	s->p++;
	return true;
}

static int digit_value(char c, unsigned base)
{
	int d;

	if (c >= '0' && c <= '9')
		d = c - '0';
	else if (c >= 'a' && c <= 'f')
		d = c - 'a' + 10;
	else if (c >= 'A' && c <= 'F')
		d = c - 'A' + 10;
	else
		return -1;
	return d < (int)base ? d : -1;
}

/* An unsigned number in `base`, without sign or prefix. Fails on no digits or on overflow. */
static bool take_u64(struct span *s, unsigned base, uint64_t *out)
{
	const char *start = s->p;
	uint64_t v = 0;
	int d;

	while (s->p < s->end && (d = digit_value(*s->p, base)) >= 0) {
		if (v > (UINT64_MAX - d) / base)
			return false;
		v = v * base + d;
		s->p++;
	}
	if (s->p == start)
		return false;
	*out = v;
	return true;
}

static bool take_u32(struct span *s, unsigned base, uint32_t *out)
{
	uint64_t v;

	if (!take_u64(s, base, &v) || v > UINT32_MAX)
		return false;
	*out = v;
	return true;
}

/* A decimal number with an optional '-': its sign and magnitude. */
static bool take_signed(struct span *s, bool *neg, uint64_t *mag)
{
	*neg = take_char(s, '-');
	return take_u64(s, 10, mag);
}

/* A decimal int in [min, max]. */
static bool take_int(struct span *s, long min, long max, int *out)
{
	uint64_t mag;
	bool neg;
	long v;

	if (!take_signed(s, &neg, &mag) || mag > (uint64_t)INT_MAX + 1)
		return false;
	v = neg ? -(long)mag : (long)mag;
	if (v < min || v > max)
		return false;
	*out = (int)v;
	return true;
}

/* The whole rest of the span is one number (blanks around it allowed). */
static bool value_u64(struct span s, unsigned base, uint64_t max, uint64_t *out)
{
	uint64_t v;

	skip_blanks(&s);
	if (!take_u64(&s, base, &v) || v > max)
		return false;
	skip_blanks(&s);
	if (!at_end(&s))
		return false;
	*out = v;
	return true;
}

static bool value_int(struct span s, long min, long max, int *out)
{
	skip_blanks(&s);
	if (!take_int(&s, min, max, out))
		return false;
	skip_blanks(&s);
	return at_end(&s);
}

/* Blank-separated unsigned decimals, at most max of them, each at most maxval. */
static bool value_u32_list(struct span s, uint32_t maxval, uint32_t *out, int max, int *count)
{
	int k = 0;

	for (;;) {
		uint32_t v;

		skip_blanks(&s);
		if (at_end(&s))
			break;
		if (k == max || !take_u32(&s, 10, &v) || v > maxval)
			return false;
		if (!at_end(&s) && !is_blank(*s.p))
			return false;
		out[k++] = v;
	}
	*count = k;
	return true;
}

/* Iterate the lines of a NUL-terminated text; a final '\n' does not start an empty line. */
struct lines {
	const char *next;
	unsigned no;
};

static bool next_line(struct lines *it, struct span *line)
{
	const char *p = it->next;
	const char *eol;

	if (!*p)
		return false;
	eol = strchrnul(p, '\n');
	line->p = p;
	line->end = eol;
	it->next = *eol ? eol + 1 : eol;
	it->no++;
	return true;
}

/* "Key:" at the start of a line: returns the span of Key and moves s past the ':'. */
static bool take_key(struct span *s, struct span *key)
{
	const char *colon = memchr(s->p, ':', s->end - s->p);

	if (!colon || colon == s->p)
		return false;
	key->p = s->p;
	key->end = colon;
	s->p = colon + 1;
	return true;
}

static bool key_is(const struct span *key, const char *name)
{
	size_t len = strlen(name);

	return (size_t)(key->end - key->p) == len && memcmp(key->p, name, len) == 0;
}

/* Copy at most ~120 bytes of a line for a message, unprintable bytes as '?'. */
static void quote(char *buf, size_t size, const char *p, const char *end)
{
	size_t n = 0;

	while (p < end && n + 4 < size) {
		unsigned char c = *p++;
		buf[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (p < end) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
}

static int bad_line(struct ferry_err *err, const char *file, unsigned no, const struct span *line,
		    const char *why)
{
	char q[128];

	quote(q, sizeof(q), line->p, line->end);
	return ferry_fail(err, EINVAL, "%s line %u: %s: \"%s\"", file, no, why, q);
}

/* maps and smaps */

static const struct {
	char name[3];
	uint32_t bit;
} vmflag_names[] = {
	{"rd", VMF_RD}, {"wr", VMF_WR}, {"ex", VMF_EX}, {"sh", VMF_SH}, {"mr", VMF_MR},
	{"mw", VMF_MW}, {"me", VMF_ME}, {"ms", VMF_MS}, {"gd", VMF_GD}, {"pf", VMF_PF},
	{"lo", VMF_LO}, {"io", VMF_IO}, {"dc", VMF_DC}, {"de", VMF_DE}, {"ac", VMF_AC},
	{"nr", VMF_NR}, {"ht", VMF_HT}, {"dd", VMF_DD}, {"mm", VMF_MM}, {"hg", VMF_HG},
	{"nh", VMF_NH}, {"mg", VMF_MG}, {"wf", VMF_WF}, {"um", VMF_UM}, {"uw", VMF_UW},
	{"ss", VMF_SS}, {"sd", VMF_SD}, {"sl", VMF_SL},
};

static uint32_t vmflag_bit(const char *p, size_t len)
{
	if (len != 2)
		return VMF_UNKNOWN;
	for (size_t i = 0; i < ARRAY_SIZE(vmflag_names); i++)
		if (p[0] == vmflag_names[i].name[0] && p[1] == vmflag_names[i].name[1])
			return vmflag_names[i].bit;
	return VMF_UNKNOWN;
}

static uint32_t parse_vmflags(struct span s)
{
	uint32_t flags = 0;

	for (;;) {
		const char *word;

		skip_blanks(&s);
		if (at_end(&s))
			return flags;
		word = s.p;
		while (s.p < s.end && !is_blank(*s.p))
			s.p++;
		flags |= vmflag_bit(word, s.p - word);
	}
}

/* A VMA line starts with hex digits and a '-'; smaps' "Key:" lines never do. */
static bool looks_like_vma(struct span s)
{
	const char *start = s.p;

	while (s.p < s.end && digit_value(*s.p, 16) >= 0)
		s.p++;
	return s.p > start && take_char(&s, '-');
}

static bool take_perms(struct span *s, struct proc_vma *v)
{
	const char *c = s->p;

	if (s->end - s->p < 4)
		return false;
	if ((c[0] != 'r' && c[0] != '-') || (c[1] != 'w' && c[1] != '-') ||
	    (c[2] != 'x' && c[2] != '-') || (c[3] != 's' && c[3] != 'p'))
		return false;
	v->prot = (c[0] == 'r' ? PROT_READ : 0) | (c[1] == 'w' ? PROT_WRITE : 0) |
		  (c[2] == 'x' ? PROT_EXEC : 0);
	v->shared = c[3] == 's';
	s->p += 4;
	return true;
}

/*
 * "start-end perms offset major:minor inode [path]", fields separated by one
 * space, the path after padding. Fills v but its path, whose span is returned
 * in *path (empty for none). Returns NULL or why the line is malformed.
 */
static const char *parse_vma_line(struct span s, struct proc_vma *v, struct span *path)
{
	memset(v, 0, sizeof(*v));
	if (!take_u64(&s, 16, &v->start) || !take_char(&s, '-') || !take_u64(&s, 16, &v->end) ||
	    !take_char(&s, ' '))
		return "bad address range";
	if (v->start >= v->end || ((v->start | v->end) & (PAGE_SIZE - 1)))
		return "empty, reversed or unaligned address range";
	if (!take_perms(&s, v) || !take_char(&s, ' '))
		return "bad permissions";
	if (!take_u64(&s, 16, &v->pgoff) || !take_char(&s, ' '))
		return "bad offset";
	if (!take_u32(&s, 16, &v->dev_major) || !take_char(&s, ':') ||
	    !take_u32(&s, 16, &v->dev_minor) || !take_char(&s, ' '))
		return "bad device";
	if (!take_u64(&s, 10, &v->ino))
		return "bad inode";
	if (!at_end(&s) && !is_blank(*s.p))
		return "junk after the inode";
	skip_blanks(&s);
	*path = s;
	return NULL;
}

static int set_vma_path(struct proc_vma *v, struct span path)
{
	static const char deleted[] = " (deleted)";
	const size_t dlen = sizeof(deleted) - 1;
	size_t len = path.end - path.p;

	if (len == 0)
		return 0;
	if (len > dlen && memcmp(path.end - dlen, deleted, dlen) == 0) {
		v->deleted = true;
		len -= dlen;
	}
	v->path = strndup(path.p, len);
	return v->path ? 0 : -ENOMEM;
}

void proc_free_maps(struct proc_vma *vmas, size_t n)
{
	if (!vmas)
		return;
	for (size_t i = 0; i < n; i++)
		free(vmas[i].path);
	free(vmas);
}

struct vma_list {
	struct proc_vma *v;
	size_t n, cap;
};

static struct proc_vma *vma_list_add(struct vma_list *l)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct proc_vma *nv = realloc(l->v, cap * sizeof(*nv));

		if (!nv)
			return NULL;
		l->v = nv;
		l->cap = cap;
	}
	return &l->v[l->n++];
}

/* The state of an smaps walk: the VMA whose "Key:" lines follow. */
struct smaps_cur {
	struct span line;
	unsigned no;
	bool has_flags;
};

static int maps_vma_line(struct vma_list *l, const struct span *line, unsigned no,
			 const char *file, struct ferry_err *err)
{
	struct proc_vma v, *slot;
	struct span path;
	const char *why = parse_vma_line(*line, &v, &path);

	if (why)
		return bad_line(err, file, no, line, why);
	if (l->n && v.start < l->v[l->n - 1].end)
		return bad_line(err, file, no, line, "overlaps or precedes the previous mapping");
	slot = vma_list_add(l);
	if (!slot || set_vma_path(&v, path) < 0) {
		if (slot)
			l->n--;
		return ferry_fail(err, ENOMEM, "%s line %u", file, no);
	}
	*slot = v;
	return 0;
}

static int smaps_key_line(struct vma_list *l, struct smaps_cur *cur, const struct span *line,
			  unsigned no, struct ferry_err *err)
{
	struct span s = *line, key;

	if (!take_key(&s, &key))
		return bad_line(err, "smaps", no, line, "neither a mapping nor a \"Key:\" line");
	for (const char *k = key.p; k < key.end; k++)
		if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') ||
		      (*k >= '0' && *k <= '9') || *k == '_'))
			return bad_line(err, "smaps", no, line, "bad key");
	if (!l->n)
		return bad_line(err, "smaps", no, line, "key before the first mapping");
	if (key_is(&key, "VmFlags")) {
		l->v[l->n - 1].vmflags |= parse_vmflags(s);
		cur->has_flags = true;
	}
	return 0;
}

int proc_parse_maps_text(const char *text, bool is_smaps, struct proc_vma **vmas, size_t *n,
			 struct ferry_err *err)
{
	const char *file = is_smaps ? "smaps" : "maps";
	struct vma_list l = {NULL, 0, 0};
	struct lines it = {text, 0};
	struct smaps_cur cur = {{NULL, NULL}, 0, true};
	struct span line;
	int r = 0;

	*vmas = NULL;
	*n = 0;
	while (r == 0 && next_line(&it, &line)) {
		if (!looks_like_vma(line)) {
			if (is_smaps)
				r = smaps_key_line(&l, &cur, &line, it.no, err);
			else
				r = bad_line(err, file, it.no, &line, "not a mapping");
			continue;
		}
		if (!cur.has_flags) {
			r = bad_line(err, file, cur.no, &cur.line, "no VmFlags line");
			break;
		}
		r = maps_vma_line(&l, &line, it.no, file, err);
		cur = (struct smaps_cur){line, it.no, !is_smaps};
	}
	if (r == 0 && !cur.has_flags)
		r = bad_line(err, file, cur.no, &cur.line, "no VmFlags line");
	if (r < 0) {
		proc_free_maps(l.v, l.n);
		return r;
	}
	*vmas = l.v;
	*n = l.n;
	return 0;
}

int proc_parse_maps(pid_t pid, bool with_flags, struct proc_vma **vmas, size_t *n,
		    struct ferry_err *err)
{
	_cleanup_free_ char *text = NULL;
	char path[64];
	int r;

	*vmas = NULL;
	*n = 0;
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, with_flags ? "smaps" : "maps");
	r = read_file(path, &text, NULL, err);
	if (r < 0)
		return r;
	r = proc_parse_maps_text(text, with_flags, vmas, n, err);
	if (r < 0)
		return ferry_wrap(err, "pid %d", (int)pid);
	return 0;
}

/* status */

enum status_field {
	SF_NAME, SF_STATE, SF_TGID, SF_PID, SF_PPID, SF_TRACER, SF_UID, SF_GID, SF_GROUPS,
	SF_UMASK, SF_THREADS, SF_SIGPND, SF_SHDPND, SF_SIGBLK, SF_SIGIGN, SF_SIGCGT,
	SF_CAPINH, SF_CAPPRM, SF_CAPEFF, SF_CAPBND, SF_CAPAMB, SF_NNP, SF_SECCOMP, SF_NSPID,
	SF_COUNT,
};

static const char *const status_keys[SF_COUNT] = {
	[SF_NAME] = "Name",	    [SF_STATE] = "State",     [SF_TGID] = "Tgid",
	[SF_PID] = "Pid",	    [SF_PPID] = "PPid",	      [SF_TRACER] = "TracerPid",
	[SF_UID] = "Uid",	    [SF_GID] = "Gid",	      [SF_GROUPS] = "Groups",
	[SF_UMASK] = "Umask",	    [SF_THREADS] = "Threads", [SF_SIGPND] = "SigPnd",
	[SF_SHDPND] = "ShdPnd",	    [SF_SIGBLK] = "SigBlk",   [SF_SIGIGN] = "SigIgn",
	[SF_SIGCGT] = "SigCgt",	    [SF_CAPINH] = "CapInh",   [SF_CAPPRM] = "CapPrm",
	[SF_CAPEFF] = "CapEff",	    [SF_CAPBND] = "CapBnd",   [SF_CAPAMB] = "CapAmb",
	[SF_NNP] = "NoNewPrivs",    [SF_SECCOMP] = "Seccomp", [SF_NSPID] = "NSpid",
};

/*
 * Seccomp needs CONFIG_SECCOMP and NSpid CONFIG_PID_NS: without them the line
 * is absent and the defaults (disabled; one level, the pid) are the truth.
 * Every other field is printed by any kernel ferry runs on.
 */
#define STATUS_OPTIONAL ((1u << SF_SECCOMP) | (1u << SF_NSPID))
#define STATUS_REQUIRED (((1u << SF_COUNT) - 1) & ~STATUS_OPTIONAL)

/*
 * The kernel escapes '\n' and '\\' in Name as "\n" and "\\"; undo that (and
 * octal escapes, for older kernels). Fails if the name does not fit.
 */
static bool unescape_name(struct span s, char *out, size_t size)
{
	size_t n = 0;

	while (!at_end(&s)) {
		char c = *s.p++;

		if (c == '\\' && !at_end(&s)) {
			char e = *s.p;

			if (e == 'n' || e == 't' || e == '\\') {
				c = e == 'n' ? '\n' : e == 't' ? '\t' : '\\';
				s.p++;
			} else if (s.end - s.p >= 3 && digit_value(s.p[0], 4) >= 0 &&
				   digit_value(s.p[1], 8) >= 0 && digit_value(s.p[2], 8) >= 0) {
				c = (char)(digit_value(s.p[0], 4) * 64 +
					   digit_value(s.p[1], 8) * 8 + digit_value(s.p[2], 8));
				s.p += 3;
			}
		}
		if (n + 1 >= size)
			return false;
		out[n++] = c;
	}
	out[n] = '\0';
	return true;
}

static bool status_state(struct span s, char *state)
{
	char c;

	skip_blanks(&s);
	if (at_end(&s))
		return false;
	c = *s.p++;
	if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
		return false;
	if (!at_end(&s) && !is_blank(*s.p))
		return false;
	*state = c;
	return true;
}

static bool status_nspid(struct span s, struct proc_status *st)
{
	uint32_t pids[ARRAY_SIZE(st->nspid)];
	int n;

	if (!value_u32_list(s, INT_MAX, pids, ARRAY_SIZE(pids), &n) || n == 0)
		return false;
	for (int i = 0; i < n; i++)
		st->nspid[i] = (pid_t)pids[i];
	st->nspid_n = n;
	return true;
}

static bool status_pid(struct span s, pid_t *out)
{
	int v;

	if (!value_int(s, 0, INT_MAX, &v))
		return false;
	*out = v;
	return true;
}

static bool status_value(enum status_field f, struct span s, struct proc_status *st)
{
	uint64_t v;
	int n;

	switch (f) {
	case SF_NAME:
		take_char(&s, '\t');
		return unescape_name(s, st->name, sizeof(st->name));
	case SF_STATE:
		return status_state(s, &st->state);
	case SF_TGID:
		return status_pid(s, &st->tgid);
	case SF_PID:
		return status_pid(s, &st->pid);
	case SF_PPID:
		return status_pid(s, &st->ppid);
	case SF_TRACER:
		return status_pid(s, &st->tracer_pid);
	case SF_UID:
		return value_u32_list(s, UINT32_MAX, st->uid, 4, &n) && n == 4;
	case SF_GID:
		return value_u32_list(s, UINT32_MAX, st->gid, 4, &n) && n == 4;
	case SF_GROUPS:
		return value_u32_list(s, UINT32_MAX, st->groups, ARRAY_SIZE(st->groups),
				      &st->ngroups);
	case SF_UMASK:
		if (!value_u64(s, 8, 0777, &v))
			return false;
		st->umask = v;
		return true;
	case SF_THREADS:
		return value_int(s, 0, INT_MAX, &st->threads);
	case SF_SIGPND:
		return value_u64(s, 16, UINT64_MAX, &st->sig_pnd);
	case SF_SHDPND:
		return value_u64(s, 16, UINT64_MAX, &st->shd_pnd);
	case SF_SIGBLK:
		return value_u64(s, 16, UINT64_MAX, &st->sig_blk);
	case SF_SIGIGN:
		return value_u64(s, 16, UINT64_MAX, &st->sig_ign);
	case SF_SIGCGT:
		return value_u64(s, 16, UINT64_MAX, &st->sig_cgt);
	case SF_CAPINH:
		return value_u64(s, 16, UINT64_MAX, &st->cap_inh);
	case SF_CAPPRM:
		return value_u64(s, 16, UINT64_MAX, &st->cap_prm);
	case SF_CAPEFF:
		return value_u64(s, 16, UINT64_MAX, &st->cap_eff);
	case SF_CAPBND:
		return value_u64(s, 16, UINT64_MAX, &st->cap_bnd);
	case SF_CAPAMB:
		return value_u64(s, 16, UINT64_MAX, &st->cap_amb);
	case SF_NNP:
		return value_int(s, 0, 1, &st->no_new_privs);
	case SF_SECCOMP:
		return value_int(s, 0, 2, &st->seccomp);
	case SF_NSPID:
		return status_nspid(s, st);
	case SF_COUNT:
		break;
	}
	return false;
}

static int status_field_of(const struct span *key)
{
	for (int f = 0; f < SF_COUNT; f++)
		if (key_is(key, status_keys[f]))
			return f;
	return -1;
}

int proc_parse_status_text(const char *text, struct proc_status *st, struct ferry_err *err)
{
	struct lines it = {text, 0};
	struct span line;
	uint32_t seen = 0;

	memset(st, 0, sizeof(*st));
	while (next_line(&it, &line)) {
		struct span s = line, key;
		int f;

		if (!take_key(&s, &key))
			return bad_line(err, "status", it.no, &line, "not a \"Key:\" line");
		f = status_field_of(&key);
		if (f < 0)
			continue;
		if (!status_value(f, s, st))
			return bad_line(err, "status", it.no, &line, "bad value");
		seen |= 1u << f;
	}
	for (int f = 0; f < SF_COUNT; f++)
		if ((STATUS_REQUIRED & (1u << f)) && !(seen & (1u << f)))
			return ferry_fail(err, EINVAL, "status: no %s line", status_keys[f]);
	if (!(seen & (1u << SF_NSPID))) {
		st->nspid[0] = st->pid;
		st->nspid_n = 1;
	}
	return 0;
}

int proc_parse_status(pid_t pid, struct proc_status *st, struct ferry_err *err)
{
	_cleanup_free_ char *text = NULL;
	char path[64];
	int r;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	r = read_file(path, &text, NULL, err);
	if (r < 0)
		return r;
	r = proc_parse_status_text(text, st, err);
	if (r < 0)
		return ferry_wrap(err, "pid %d", (int)pid);
	return 0;
}

/* stat */

#define STAT_FIELDS 52 /* fields a 5.x+ kernel prints; later ones are ignored */

static bool stat_pid(bool neg, uint64_t mag, pid_t *out)
{
	if (neg || mag > INT_MAX)
		return false;
	*out = (pid_t)mag;
	return true;
}

static bool stat_u64(bool neg, uint64_t mag, uint64_t *out)
{
	if (neg)
		return false;
	*out = mag;
	return true;
}

static bool stat_int(bool neg, uint64_t mag, int *out)
{
	if (mag > (neg ? (uint64_t)INT_MAX + 1 : (uint64_t)INT_MAX))
		return false;
	*out = neg ? (int)-(int64_t)mag : (int)mag;
	return true;
}

/* Field `no` (numbered as in proc(5)) is the whole of tok. */
static bool stat_field(int no, struct span tok, struct proc_stat *st)
{
	uint64_t mag;
	bool neg;

	if (no == 3) {
		if (tok.end - tok.p != 1)
			return false;
		st->state = *tok.p;
		return (st->state >= 'A' && st->state <= 'Z') ||
		       (st->state >= 'a' && st->state <= 'z');
	}
	if (!take_signed(&tok, &neg, &mag) || !at_end(&tok))
		return false;
	if (neg && mag > (uint64_t)INT64_MAX + 1)
		return false;
	switch (no) {
	case 4: return stat_pid(neg, mag, &st->ppid);
	case 5: return stat_pid(neg, mag, &st->pgrp);
	case 6: return stat_pid(neg, mag, &st->session);
	case 9: return stat_u64(neg, mag, &st->flags);
	case 22: return stat_u64(neg, mag, &st->start_time);
	case 26: return stat_u64(neg, mag, &st->start_code);
	case 27: return stat_u64(neg, mag, &st->end_code);
	case 28: return stat_u64(neg, mag, &st->start_stack);
	case 38: return stat_int(neg, mag, &st->exit_signal);
	case 45: return stat_u64(neg, mag, &st->start_data);
	case 46: return stat_u64(neg, mag, &st->end_data);
	case 47: return stat_u64(neg, mag, &st->start_brk);
	case 48: return stat_u64(neg, mag, &st->arg_start);
	case 49: return stat_u64(neg, mag, &st->arg_end);
	case 50: return stat_u64(neg, mag, &st->env_start);
	case 51: return stat_u64(neg, mag, &st->env_end);
	case 52: return stat_int(neg, mag, &st->exit_code);
	default: return true;
	}
}

static int bad_stat(struct ferry_err *err, const struct span *text, const char *why)
{
	char q[128];

	quote(q, sizeof(q), text->p, text->end);
	return ferry_fail(err, EINVAL, "stat: %s: \"%s\"", why, q);
}

static int bad_stat_field(struct ferry_err *err, const struct span *text, int field)
{
	char q[128];

	quote(q, sizeof(q), text->p, text->end);
	return ferry_fail(err, EINVAL, "stat: bad field %d: \"%s\"", field, q);
}

int proc_parse_stat_text(const char *text, struct proc_stat *st, struct ferry_err *err)
{
	const struct span all = {text, text + strlen(text)};
	struct span s = all;
	const char *close;
	uint64_t pid;
	size_t len;
	int no = 2;

	memset(st, 0, sizeof(*st));
	if (!take_u64(&s, 10, &pid) || pid > INT_MAX || !take_char(&s, ' ') || !take_char(&s, '('))
		return bad_stat(err, &all, "does not start with \"PID (\"");
	close = strrchr(s.p, ')');
	if (!close)
		return bad_stat(err, &all, "no ')' after the command name");
	len = close - s.p;
	if (len >= sizeof(st->comm))
		return bad_stat(err, &all, "command name too long");
	memcpy(st->comm, s.p, len);
	st->comm[len] = '\0';
	st->pid = (pid_t)pid;
	s.p = close + 1;
	while (take_char(&s, ' ')) {
		struct span tok = {s.p, s.p};

		while (tok.end < s.end && *tok.end != ' ' && *tok.end != '\n')
			tok.end++;
		if (!stat_field(++no, tok, st))
			return bad_stat_field(err, &all, no);
		s.p = tok.end;
	}
	if (no < STAT_FIELDS)
		return bad_stat(err, &all, no < 3 ? "nothing after the command name"
						  : "fewer fields than a 5.x kernel prints");
	take_char(&s, '\n');
	if (!at_end(&s))
		return bad_stat(err, &all, "junk after the last field");
	return 0;
}

int proc_parse_stat(pid_t pid, struct proc_stat *st, struct ferry_err *err)
{
	_cleanup_free_ char *text = NULL;
	char path[64];
	int r;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	r = read_file(path, &text, NULL, err);
	if (r < 0)
		return r;
	r = proc_parse_stat_text(text, st, err);
	if (r < 0)
		return ferry_wrap(err, "pid %d", (int)pid);
	return 0;
}

/* fdinfo */

enum { FI_POS = 1u << 0, FI_FLAGS = 1u << 1, FI_MNT_ID = 1u << 2, FI_INO = 1u << 3 };

/* pos is printed as a signed loff_t; keep its bits (e.g. /proc/PID/mem past 2^63). */
static bool fdinfo_pos(struct span s, uint64_t *pos)
{
	uint64_t mag;
	bool neg;

	skip_blanks(&s);
	if (!take_signed(&s, &neg, &mag) || (neg && mag > (uint64_t)INT64_MAX + 1))
		return false;
	skip_blanks(&s);
	if (!at_end(&s))
		return false;
	*pos = neg ? 0 - mag : mag;
	return true;
}

static bool fdinfo_value(const struct span *key, struct span s, struct proc_fdinfo *fi,
			 unsigned *seen)
{
	uint64_t v;

	if (key_is(key, "pos")) {
		*seen |= FI_POS;
		return fdinfo_pos(s, &fi->pos);
	}
	if (key_is(key, "flags")) {
		*seen |= FI_FLAGS;
		if (!value_u64(s, 8, UINT32_MAX, &v))
			return false;
		fi->flags = v;
		return true;
	}
	if (key_is(key, "mnt_id")) {
		*seen |= FI_MNT_ID;
		return value_int(s, 0, INT_MAX, &fi->mnt_id);
	}
	if (key_is(key, "ino")) {
		*seen |= FI_INO;
		return value_u64(s, 10, UINT64_MAX, &fi->ino);
	}
	if (key_is(key, "lock"))
		fi->has_lock = true;
	return true;
}

int proc_parse_fdinfo_text(const char *text, struct proc_fdinfo *fi, struct ferry_err *err)
{
	static const char *const names[] = {"pos", "flags", "mnt_id", "ino"};
	struct lines it = {text, 0};
	struct span line;
	unsigned seen = 0;

	memset(fi, 0, sizeof(*fi));
	while (next_line(&it, &line)) {
		struct span s = line, key;

		/* Lines of other shapes (inotify, fanotify, epoll) are not ours to judge. */
		if (!take_key(&s, &key))
			continue;
		if (!fdinfo_value(&key, s, fi, &seen))
			return bad_line(err, "fdinfo", it.no, &line, "bad value");
	}
	for (unsigned i = 0; i < ARRAY_SIZE(names); i++)
		if (!(seen & (1u << i)))
			return ferry_fail(err, EINVAL, "fdinfo: no %s line", names[i]);
	return 0;
}

int proc_parse_fdinfo(pid_t pid, int fd, struct proc_fdinfo *fi, struct ferry_err *err)
{
	_cleanup_free_ char *text = NULL;
	char path[64];
	int r;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, fd);
	r = read_file(path, &text, NULL, err);
	if (r < 0)
		return r;
	r = proc_parse_fdinfo_text(text, fi, err);
	if (r < 0)
		return ferry_wrap(err, "pid %d fd %d", (int)pid, fd);
	return 0;
}

/* children, threads, auxv */

struct pid_list {
	pid_t *v;
	size_t n, cap;
};

/* Append the blank-separated pids of text ("12 34 ", as the kernel prints them). */
static int pid_list_parse(struct pid_list *l, const char *text, struct ferry_err *err)
{
	struct span s = {text, text + strlen(text)};

	for (;;) {
		const char *tok;
		uint64_t pid;

		while (s.p < s.end && (is_blank(*s.p) || *s.p == '\n'))
			s.p++;
		if (at_end(&s))
			return 0;
		tok = s.p;
		if (!take_u64(&s, 10, &pid) || pid == 0 || pid > INT_MAX ||
		    (!at_end(&s) && !is_blank(*s.p) && *s.p != '\n')) {
			struct span line = {tok, strchrnul(tok, '\n')};
			char q[128];

			quote(q, sizeof(q), line.p, line.end);
			return ferry_fail(err, EINVAL, "children: bad pid at \"%s\"", q);
		}
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 16;
			pid_t *nv = realloc(l->v, cap * sizeof(*nv));

			if (!nv)
				return ferry_fail(err, ENOMEM, "children");
			l->v = nv;
			l->cap = cap;
		}
		l->v[l->n++] = (pid_t)pid;
	}
}

int proc_parse_children_text(const char *text, pid_t **kids, size_t *n, struct ferry_err *err)
{
	struct pid_list l = {NULL, 0, 0};
	int r = pid_list_parse(&l, text, err);

	*kids = NULL;
	*n = 0;
	if (r < 0) {
		free(l.v);
		return r;
	}
	*kids = l.v;
	*n = l.n;
	return 0;
}

static bool is_tid_name(const char *name)
{
	if (!*name)
		return false;
	for (; *name; name++)
		if (*name < '0' || *name > '9')
			return false;
	return true;
}

/* A child forked by any thread is listed under that thread: read them all. */
int proc_parse_children(pid_t pid, pid_t **kids, size_t *n, struct ferry_err *err)
{
	_cleanup_closedir_ DIR *dir = NULL;
	struct pid_list l = {NULL, 0, 0};
	struct dirent *de;
	char path[320]; /* fits a 255-byte d_name */
	int r = 0;

	*kids = NULL;
	*n = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	if (!dir)
		return ferry_fail_errno(err, "open %s", path);
	while (r == 0 && (errno = 0, de = readdir(dir))) {
		_cleanup_free_ char *text = NULL;

		if (!is_tid_name(de->d_name))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/children", (int)pid, de->d_name);
		r = read_file(path, &text, NULL, err);
		if (r == 0 && pid_list_parse(&l, text, err) < 0)
			r = ferry_wrap(err, "%s", path);
	}
	if (r == 0 && errno)
		r = ferry_fail_errno(err, "read /proc/%d/task", (int)pid);
	if (r < 0) {
		free(l.v);
		return r;
	}
	*kids = l.v;
	*n = l.n;
	return 0;
}

int proc_count_threads(pid_t pid, struct ferry_err *err)
{
	_cleanup_closedir_ DIR *dir = NULL;
	struct dirent *de;
	char path[64];
	int count = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	if (!dir)
		return ferry_fail_errno(err, "open %s", path);
	while ((errno = 0, de = readdir(dir)))
		if (is_tid_name(de->d_name))
			count++;
	if (errno)
		return ferry_fail_errno(err, "read %s", path);
	return count;
}

int proc_parse_auxv_data(const void *data, size_t len, uint64_t **auxv, size_t *n_words,
			 struct ferry_err *err)
{
	const unsigned char *bytes = data;
	size_t pairs = 0;
	uint64_t *out;

	*auxv = NULL;
	*n_words = 0;
	for (;;) {
		uint64_t type;

		if ((pairs + 1) * 16 > len)
			return ferry_fail(err, EINVAL, "auxv: no AT_NULL in %zu bytes", len);
		memcpy(&type, bytes + pairs * 16, sizeof(type));
		pairs++;
		if (type == 0)
			break;
	}
	out = malloc(pairs * 16);
	if (!out)
		return ferry_fail(err, ENOMEM, "auxv");
	memcpy(out, bytes, pairs * 16);
	*auxv = out;
	*n_words = pairs * 2;
	return 0;
}

int proc_read_auxv(pid_t pid, uint64_t **auxv, size_t *n_words, struct ferry_err *err)
{
	_cleanup_free_ char *data = NULL;
	char path[64];
	size_t len;
	int r;

	*auxv = NULL;
	*n_words = 0;
	snprintf(path, sizeof(path), "/proc/%d/auxv", (int)pid);
	r = read_file(path, &data, &len, err);
	if (r < 0)
		return r;
	r = proc_parse_auxv_data(data, len, auxv, n_words, err);
	if (r < 0)
		return ferry_wrap(err, "pid %d", (int)pid);
	return 0;
}
