/*
 * auth_tmpl.c - ${clientid} ${username} ${password} ${peerhost} in the HTTP
 * hook's URL and body and in the Redis command's arguments, each value
 * escaped for where it lands (JSON string, URL component, or raw: a Redis
 * argument is binary safe, so nothing a client sends can add an argument).
 */
#include "auth/auth_async.h"
#include "core/buf.h"
#include "core/mem.h"

#include <stdio.h>
#include <string.h>

struct var {
	const char *name;
	size_t len;
};
static const struct var vars[] = {
	{ "${clientid}", 11 }, { "${username}", 11 }, { "${password}", 11 }, { "${peerhost}", 11 },
};

static void put_escaped(struct buf *b, const uint8_t *p, size_t n, enum tmpl_esc esc)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		uint8_t ch = p[i];
		char tmp[8];
		if (esc == TMPL_JSON && (ch < 0x20 || ch == '"' || ch == '\\')) {
			snprintf(tmp, sizeof(tmp), "\\u%04x", ch);
			buf_append(b, tmp, 6);
		} else if (esc == TMPL_URL && !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
						 (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
						 ch == '.' || ch == '~')) {
			tmp[0] = '%';
			tmp[1] = hex[ch >> 4];
			tmp[2] = hex[ch & 15];
			buf_append(b, tmp, 3);
		} else {
			buf_append(b, &ch, 1);
		}
	}
}

char *auth_tmpl_render(const char *tmpl, const struct auth_job *j, enum tmpl_esc esc)
{
	struct buf b = { 0 };
	const char *p = tmpl;
	while (*p) {
		const char *d = strstr(p, "${");
		if (!d) {
			buf_append(&b, p, strlen(p));
			break;
		}
		buf_append(&b, p, (size_t)(d - p));
		int k = -1;
		for (int i = 0; i < 4; i++)
			if (!strncmp(d, vars[i].name, vars[i].len))
				k = i;
		if (k < 0) { /* auth_tmpl_check refused these at start */
			buf_append(&b, "${", 2);
			p = d + 2;
			continue;
		}
		const char *v = k == 0 ? j->client_id : k == 1 ? (j->username ? j->username : "") :
				k == 3 ? j->peerhost : NULL;
		if (k == 2)
			put_escaped(&b, j->password, j->password_len, esc);
		else
			put_escaped(&b, (const uint8_t *)v, strlen(v), esc);
		p = d + vars[k].len;
	}
	buf_append(&b, "", 1);
	char *out = hq_strdup((const char *)buf_head(&b));
	explicit_bzero(b.data, b.cap); /* may hold the password */
	buf_free(&b);
	return out;
}

const char *auth_tmpl_check(const char *tmpl)
{
	for (const char *d = strstr(tmpl, "${"); d; d = strstr(d + 2, "${")) {
		bool ok = false;
		for (int i = 0; i < 4; i++)
			ok |= !strncmp(d, vars[i].name, vars[i].len);
		if (!ok)
			return "unknown placeholder (known: ${clientid} ${username} ${password} ${peerhost})";
	}
	return NULL;
}
