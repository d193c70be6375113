#include "core/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int ret_code(const struct ferry_err *err)
{
	return err->code ? -err->code : -EINVAL;
}

static int vfail(struct ferry_err *err, int code, const char *fmt, va_list ap)
{
	int n;

	if (code < 0)
		code = -code;
	err->code = code;
	n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	if (code && n >= 0 && (size_t)n < sizeof(err->msg))
		snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(code));
	return ret_code(err);
}

int ferry_fail(struct ferry_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vfail(err, code, fmt, ap);
	va_end(ap);
	return ret;
}

int ferry_refuse(struct ferry_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	err->code = code < 0 ? -code : code;
	return ret_code(err);
}

int ferry_fail_errno(struct ferry_err *err, const char *fmt, ...)
{
	int code = errno ? errno : EIO;
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vfail(err, code, fmt, ap);
	va_end(ap);
	return ret;
}

int ferry_wrap(struct ferry_err *err, const char *fmt, ...)
{
	char old[FERRY_ERR_MSG];
	va_list ap;
	int n;

	memcpy(old, err->msg, sizeof(old));
	va_start(ap, fmt);
	n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(err->msg))
		snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", old);
	return ret_code(err);
}

void ferry_err_clear(struct ferry_err *err)
{
	err->code = 0;
	err->msg[0] = '\0';
}
