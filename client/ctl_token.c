/*
 * client/ctl_token.c: the token file that 'vgenctl login' leaves behind.
 *
 * The token is a bearer credential, so it lives in a 0600 file in a 0700
 * folder under the XDG config folder, is replaced atomically (a crash
 * leaves the old token or the new one, never half of one), and every copy
 * vgenctl holds in memory is wiped before it is freed.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"

int
ctl_token_path(const char *xdg, const char *home, char *buf, size_t len)
{
	int n;

	/* The XDG spec says to ignore a relative $XDG_CONFIG_HOME. */
	if (xdg != NULL && xdg[0] == '/')
		n = snprintf(buf, len, "%s/vgen/token", xdg);
	else if (home != NULL && home[0] != '\0')
		n = snprintf(buf, len, "%s/.config/vgen/token",
		    strcmp(home, "/") == 0 ? "" : home);
	else
		return -ENOENT;
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

int
ctl_token_default_path(char *buf, size_t len)
{
	const char *home = getenv("HOME");
	struct passwd pw, *res = NULL;
	char pwbuf[4096];

	if ((home == NULL || home[0] == '\0') &&
	    getpwuid_r(getuid(), &pw, pwbuf, sizeof(pwbuf), &res) == 0 &&
	    res != NULL)
		home = res->pw_dir;
	return ctl_token_path(getenv("XDG_CONFIG_HOME"), home, buf, len);
}

/* mkdirs creates every missing folder above the file `path`, mode 0700. */
static int
mkdirs(const char *path)
{
	char dir[CTL_PATH_MAX];
	size_t i, n = strlen(path);

	if (n >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, path, n + 1);
	for (i = 1; i < n; i++) {
		if (dir[i] != '/')
			continue;
		dir[i] = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return -errno;
		dir[i] = '/';
	}
	return 0;
}

int
ctl_token_save(const char *path, const char *token)
{
	char tmp[CTL_PATH_MAX];
	size_t len = strlen(token), off = 0;
	ssize_t n;
	int fd = -1, rv, m;

	m = snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	if (m < 0 || (size_t)m >= sizeof(tmp))
		return -ENAMETOOLONG;
	rv = mkdirs(path);
	if (rv < 0)
		return rv;

	/* mkstemp creates the file 0600 whatever the umask. */
	fd = mkstemp(tmp);
	if (fd < 0)
		return -errno;
	while (off < len) {
		n = write(fd, token + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rv = -errno;
			goto out;
		}
		off += (size_t)n;
	}
	errno = 0;
	if (write(fd, "\n", 1) != 1 || fsync(fd) < 0) {
		rv = errno ? -errno : -EIO;
		goto out;
	}
	rv = close(fd) < 0 ? -errno : 0;
	fd = -1;
	if (rv == 0 && rename(tmp, path) < 0)
		rv = -errno;
out:
	if (fd >= 0)
		close(fd);
	if (rv < 0)
		unlink(tmp);
	return rv;
}

int
ctl_token_load(const char *path, char **out)
{
	char *buf = NULL;
	size_t len = 0, start = 0;
	struct stat sb;
	ssize_t n;
	int fd, rv;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0) {
		rv = -errno;
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		rv = -EINVAL;
		goto out;
	}
	if (sb.st_mode & 077)
		ctl_err("warning: others may read %s; run: chmod 600 %s",
		    path, path);

	buf = malloc(CTL_TOKEN_MAX + 1);
	if (buf == NULL) {
		rv = -ENOMEM;
		goto out;
	}
	while (len <= CTL_TOKEN_MAX) {
		n = read(fd, buf + len, CTL_TOKEN_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rv = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > CTL_TOKEN_MAX) {
		rv = -EFBIG;
		goto out;
	}

	while (len > 0 && strchr(" \t\r\n", buf[len - 1]) != NULL)
		len--;
	while (start < len && strchr(" \t\r\n", buf[start]) != NULL)
		start++;
	if (start == len || memchr(buf + start, '\0', len - start) != NULL) {
		rv = start == len ? -ENOENT : -EINVAL;
		goto out;
	}
	memmove(buf, buf + start, len - start);
	len -= start;
	explicit_bzero(buf + len, CTL_TOKEN_MAX + 1 - len);	/* NUL too */
	*out = buf;
	buf = NULL;
	rv = 0;
out:
	if (buf != NULL) {
		explicit_bzero(buf, CTL_TOKEN_MAX + 1);
		free(buf);
	}
	close(fd);
	return rv;
}

int
ctl_token_remove(const char *path)
{
	return unlink(path) < 0 ? -errno : 0;
}
