/*
 * hamqtt-passwd - manage a password file in Mosquitto's format (the same
 * options as mosquitto_passwd):
 *   hamqtt-passwd [-c | -D] FILE USER          (asks the password twice)
 *   hamqtt-passwd -b [-c] FILE USER PASSWORD
 *   -c create (overwrite) FILE; -D delete USER; -I N PBKDF2 iterations
 * Lines are user:$7$<iterations>$<salt>$<hash> (PBKDF2-SHA512, 101
 * iterations as mosquitto_passwd); other lines are kept as they are. The new
 * file is written next to the old one (mode 0600) and renamed over it, so a
 * broker re-reading it on SIGHUP never sees half a file. A file that exists
 * keeps its mode, owner and group: root editing the Debian package's
 * root:hamqtt 0640 file must not leave it unreadable to the broker.
 */
#include "auth/auth_passwd.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

static void usage(void)
{
	fprintf(stderr,
		"usage: hamqtt-passwd [-c | -D] passwordfile username\n"
		"       hamqtt-passwd -b [-c] passwordfile username password\n"
		"  -c  create a new password file (an existing one is overwritten)\n"
		"  -D  delete the user\n"
		"  -b  take the password from the command line\n"
		"  -I  PBKDF2 iterations (default %d)\n",
		PASSWD_DEFAULT_ITER);
}

/* One password from the terminal, without echo. */
static int read_password(const char *prompt, char *out, size_t cap)
{
	FILE *tty = fopen("/dev/tty", "r+");
	FILE *in = tty ? tty : stdin;
	struct termios old, quiet;
	bool restore = false;
	if (tty && tcgetattr(fileno(tty), &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		restore = tcsetattr(fileno(tty), TCSAFLUSH, &quiet) == 0;
	}
	fprintf(tty ? tty : stderr, "%s", prompt);
	fflush(tty ? tty : stderr);
	char *r = fgets(out, (int)cap, in);
	if (restore)
		tcsetattr(fileno(tty), TCSAFLUSH, &old);
	fprintf(tty ? tty : stderr, "\n");
	if (tty)
		fclose(tty);
	if (!r)
		return -1;
	out[strcspn(out, "\r\n")] = 0;
	return 0;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0, got;
	char *buf = hq_malloc(cap + 1);
	while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap)
			buf = hq_realloc(buf, (cap *= 2) + 1);
	}
	fclose(f);
	buf[n] = 0;
	*len = n;
	return buf;
}

int main(int argc, char **argv)
{
	bool create = false, del = false, batch = false;
	unsigned long iter = PASSWD_DEFAULT_ITER;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-c"))
			create = true;
		else if (!strcmp(argv[i], "-D"))
			del = true;
		else if (!strcmp(argv[i], "-b"))
			batch = true;
		else if (!strcmp(argv[i], "-I") && i + 1 < argc)
			iter = strtoul(argv[++i], NULL, 10);
		else {
			usage();
			return 1;
		}
	}
	int left = argc - i;
	if ((create && del) || iter == 0 || iter > 100000000 || left != (batch ? 3 : 2) ||
	    (del && batch)) {
		usage();
		return 1;
	}
	const char *path = argv[i], *user = argv[i + 1];
	if (!*user || strchr(user, ':')) {
		fprintf(stderr, "hamqtt-passwd: a user name may not be empty or contain ':'\n");
		return 1;
	}
	char pw[1024], again[1024];
	if (batch) {
		snprintf(pw, sizeof(pw), "%s", argv[i + 2]);
	} else if (!del) {
		if (read_password("Password: ", pw, sizeof(pw)) != 0 ||
		    read_password("Reenter password: ", again, sizeof(again)) != 0) {
			fprintf(stderr, "hamqtt-passwd: no password read\n");
			return 1;
		}
		if (strcmp(pw, again) != 0) {
			fprintf(stderr, "hamqtt-passwd: passwords do not match\n");
			return 1;
		}
	}
	/* the existing lines, minus the user's */
	size_t len = 0;
	char *old = create ? NULL : read_file(path, &len);
	if (!create && !old) {
		fprintf(stderr, "hamqtt-passwd: %s: %s (use -c to create it)\n", path, strerror(errno));
		return 1;
	}
	size_t ul = strlen(user), cap = len + ul + 512, n = 0; /* room for the new line */
	char *out = hq_malloc(cap);
	bool found = false;
	for (char *p = old; p && *p;) {
		char *nl = strchr(p, '\n');
		size_t ll = nl ? (size_t)(nl - p) : strlen(p);
		if (ll > ul && !memcmp(p, user, ul) && p[ul] == ':') {
			found = true;
		} else if (ll) {
			memcpy(out + n, p, ll);
			n += ll;
			out[n++] = '\n';
		}
		p = nl ? nl + 1 : p + ll;
	}
	if (del && !found) {
		fprintf(stderr, "hamqtt-passwd: user %s not found\n", user);
		hq_free(old);
		hq_free(out);
		return 1;
	}
	if (!del) {
		char hash[256];
		if (passwd_hash_make((const uint8_t *)pw, strlen(pw), (uint32_t)iter, hash, sizeof(hash)) != 0) {
			fprintf(stderr, "hamqtt-passwd: cannot hash the password\n");
			return 1;
		}
		n += (size_t)snprintf(out + n, cap - n, "%s:%s\n", user, hash);
	}
	memset(pw, 0, sizeof(pw));
	memset(again, 0, sizeof(again));
	int rc = 0;
	struct stat st;
	bool had = stat(path, &st) == 0;
	if (fs_write_atomic(path, out, n, had ? st.st_mode & 07777 : 0600) != HQ_OK) {
		fprintf(stderr, "hamqtt-passwd: cannot write %s: %s\n", path, strerror(errno));
		rc = 1;
	} else if (had && (st.st_uid != geteuid() || st.st_gid != getegid()) &&
		   chown(path, st.st_uid, st.st_gid) != 0) {
		fprintf(stderr, "hamqtt-passwd: %s written, but cannot give it back its owner "
			"%u:%u: %s\n", path, (unsigned)st.st_uid, (unsigned)st.st_gid, strerror(errno));
		rc = 1;
	}
	hq_free(old);
	hq_free(out);
	return rc;
}
