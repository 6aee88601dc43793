/*
 * common/log.c: one line per event on stderr,
 * "2026-11-25T12:00:00.123Z info server msg key=value ...".
 * A line is formatted in a local buffer and written with one write(2), so
 * lines from several threads never interleave.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "vg.h"

static const char *log_component = "vgen";
static enum vg_log_level log_min = VG_LOG_INFO;
static const char *const level_names[] = { "debug", "info", "warn", "error" };

void
vg_log_init(const char *component)
{
	const char *lvl = getenv("VGEN_LOG_LEVEL");

	log_component = component;
	if (lvl == NULL)
		return;
	for (int i = VG_LOG_DEBUG; i <= VG_LOG_ERROR; i++)
		if (strcasecmp(lvl, level_names[i]) == 0)
			log_min = (enum vg_log_level)i;
}

void
vg_log(enum vg_log_level lvl, const char *fmt, ...)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n, m;

	if (lvl < log_min)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line),
	    "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    ts.tv_nsec / 1000000, level_names[lvl], log_component);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;	/* truncated: keep the newline */
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;	/* nowhere left to report it */
}

void
vg_assert_fail(const char *what, const char *file, int line)
{
	vg_log(VG_LOG_ERROR, "assertion failed: %s at %s:%d", what, file, line);
	abort();
}

int64_t
vg_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
vg_wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
