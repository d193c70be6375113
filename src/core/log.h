/*
 * Logging: one global level (0 errors only .. 4 debug) and one sink (stderr
 * or the file given with -o). Messages are single lines prefixed with the
 * time since start and the level.
 */
#ifndef FERRY_CORE_LOG_H
#define FERRY_CORE_LOG_H

enum log_level { LOG_ERR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3, LOG_TRACE = 4 };

extern int ferry_log_level;

int log_open(const char *path); /* -o FILE; returns -errno */
void log_set_level(int level);
int log_to_file(void);
int log_fileno(void);  /* the fd the log goes to */ /* 1 if -o sent the log to a file */
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pr_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define pr_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define pr_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define pr_debug(...)                                                                              \
	do {                                                                                       \
		if (ferry_log_level >= LOG_DEBUG)                                                  \
			log_msg(LOG_DEBUG, __VA_ARGS__);                                           \
	} while (0)
#define pr_trace(...)                                                                              \
	do {                                                                                       \
		if (ferry_log_level >= LOG_TRACE)                                                  \
			log_msg(LOG_TRACE, __VA_ARGS__);                                           \
	} while (0)

#endif
