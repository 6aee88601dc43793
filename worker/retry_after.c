/*
 * worker/retry_after.c: how long to wait before trying a provider again.
 *
 * Reads the hints a throttled provider sends (retry-after-ms, Retry-After
 * as seconds or as an HTTP date, RFC 9110 §10.2.3) the way openai-python
 * does, and computes exponential backoff with jitter when there is none.
 * Dates are parsed by hand: strptime depends on the locale, and timegm on
 * a 32-bit time_t would wrap on the "70 years away" date DESIGN §7 warns
 * about.
 */
#include <math.h>
#include <string.h>

#include "wrk_parse.h"

static const char *
skip_ws(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

static bool
is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static bool
is_alpha(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/*
 * A decimal number, "[+-]digits[.digits]", alone between white space.
 * Written out rather than strtod so that "inf", "0x10" and a locale's
 * decimal comma are refused.
 */
static bool
number(const char *s, double *out)
{
	double v = 0, scale = 1;
	bool neg = false, any = false;

	s = skip_ws(s);
	if (*s == '+' || *s == '-')
		neg = *s++ == '-';
	for (; is_digit(*s); s++, any = true)
		v = v * 10 + (*s - '0');
	if (*s == '.')
		for (s++; is_digit(*s); s++, any = true)
			v += (*s - '0') * (scale /= 10);
	if (!any || *skip_ws(s) != '\0')
		return false;
	*out = neg ? -v : v;
	return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int64_t
year_of(int64_t unix_s)
{
	int64_t z = (unix_s >= 0 ? unix_s : unix_s - 86399) / 86400 + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;

	return yoe + era * 400 + (mp >= 10);
}

static bool
leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Reads 1..max digits into *v. */
static bool
digits(const char **s, int min, int max, int *v)
{
	int n = 0;

	*v = 0;
	while (n < max && is_digit(**s)) {
		*v = *v * 10 + (**s - '0');
		(*s)++;
		n++;
	}
	return n >= min && !is_digit(**s);
}

static bool
month(const char **s, int *m)
{
	static const char names[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	char w[3];
	int i;

	for (i = 0; i < 3; i++) {
		if (!is_alpha((*s)[i]))
			return false;
		w[i] = (char)((*s)[i] | 0x20);
	}
	if (is_alpha((*s)[3]))
		return false;
	for (i = 0; i < 12; i++) {
		if (memcmp(names + 3 * i, w, 3) == 0) {
			*m = i + 1;
			*s += 3;
			return true;
		}
	}
	return false;
}

static bool
clock_time(const char **s, int *h, int *mi, int *sec)
{
	return digits(s, 2, 2, h) && *(*s)++ == ':' &&
	    digits(s, 2, 2, mi) && *(*s)++ == ':' && digits(s, 2, 2, sec);
}

/*
 * An HTTP date in any of the three forms RFC 9110 §5.6.7 makes recipients
 * accept.  A two-digit RFC 850 year more than 50 years ahead of `now` is
 * taken in the previous century, as the RFC says.
 */
static bool
http_date(const char *s, int64_t now, int64_t *out)
{
	int d, m, y, h, mi, sec;
	int64_t year;
	const char *y0;
	bool two;
	static const int mdays[] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31,
	};

	s = skip_ws(s);
	while (is_alpha(*s))		/* the weekday, unchecked */
		s++;
	if (*s == ',')
		s++;
	s = skip_ws(s);
	if (is_digit(*s)) {		/* 06 Nov 1994, 06-Nov-94 */
		char sep;

		if (!digits(&s, 1, 2, &d))
			return false;
		sep = *s++;
		if ((sep != ' ' && sep != '-') || !month(&s, &m) ||
		    *s++ != sep)
			return false;
		y0 = s;
		if (!digits(&s, 2, 4, &y) || s - y0 == 3)
			return false;
		two = s - y0 == 2;
		if (*s++ != ' ' || !clock_time(&s, &h, &mi, &sec))
			return false;
		year = y;
		if (two) {		/* RFC 850: "94" */
			year += year_of(now) / 100 * 100;
			if (year > year_of(now) + 50)
				year -= 100;
		}
	} else {			/* asctime: Nov  6 08:49:37 1994 */
		if (!month(&s, &m))
			return false;
		s = skip_ws(s);
		if (!digits(&s, 1, 2, &d) || *s++ != ' ' ||
		    !clock_time(&s, &h, &mi, &sec) || *s++ != ' ' ||
		    !digits(&s, 4, 4, &y))
			return false;
		year = y;
	}
	s = skip_ws(s);
	if (strncmp(s, "GMT", 3) == 0 || strncmp(s, "UTC", 3) == 0)
		s += 3;
	if (*skip_ws(s) != '\0')
		return false;
	if (d < 1 || d > mdays[m - 1] + (m == 2 && leap(year)) || h > 23 ||
	    mi > 59 || sec > 60)
		return false;
	*out = days_from_civil(year, m, d) * 86400 + h * 3600 + mi * 60 + sec;
	return true;
}

static int64_t
clamp_ms(double ms, int64_t max_ms)
{
	if (max_ms < 0)
		max_ms = 0;
	if (!(ms > 0))
		return 0;
	ms = ceil(ms);		/* never come back early */
	if (ms >= (double)max_ms)
		return max_ms;
	return (int64_t)ms;
}

int64_t
wrk_retry_after_ms(const char *retry_after, const char *retry_after_ms,
    int64_t now_unix_s, int64_t max_ms)
{
	int64_t when;
	double v;

	if (retry_after_ms != NULL && number(retry_after_ms, &v))
		return clamp_ms(v, max_ms);
	if (retry_after == NULL)
		return -1;
	if (number(retry_after, &v))
		return clamp_ms(v * 1000.0, max_ms);
	if (http_date(retry_after, now_unix_s, &when))
		return clamp_ms(((double)when - (double)now_unix_s) * 1000.0,
		    max_ms);
	return -1;
}

int64_t
wrk_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms, uint32_t rnd)
{
	int64_t cap = base_ms, half;
	int i;

	if (base_ms <= 0 || max_ms <= 0)
		return 0;
	for (i = 1; i < attempt && cap < max_ms; i++)
		cap = cap > max_ms / 2 ? max_ms : cap * 2;
	if (cap > max_ms)
		cap = max_ms;
	half = cap / 2;
	return cap - half + (int64_t)(rnd % (uint64_t)(half + 1));
}
