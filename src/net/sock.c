/* sock.c - socket helpers (see sock.h). */
#include "net/sock.h"
#include "core/err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Resolve host:port for a listening socket: *res to free, *ai to use. */
static int resolve(const char *host, int port, struct addrinfo **res, struct addrinfo **ai)
{
	struct addrinfo hints = { 0 };
	char portstr[16];
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%d", port);
	*res = NULL;
	if (getaddrinfo(host && *host ? host : NULL, portstr, &hints, res) != 0 || !*res) {
		errno = EINVAL;
		return HQ_EINVAL;
	}
	/* with no host, prefer IPv4 0.0.0.0 like EMQX's default bind */
	*ai = *res;
	for (struct addrinfo *p = *res; p && !(host && *host); p = p->ai_next)
		if (p->ai_family == AF_INET) {
			*ai = p;
			break;
		}
	return HQ_OK;
}

int sock_listen_tcp(const char *host, int port, int backlog, int reuseport)
{
	struct addrinfo *res, *ai;
	int fd = -1, one = 1;

	if (resolve(host, port, &res, &ai) != HQ_OK)
		return HQ_EINVAL;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, backlog) < 0)
		goto fail;
	freeaddrinfo(res);
	return fd;
fail:;
	int e = errno;
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	errno = e;
	return HQ_EIO;
}

int sock_port_free(const char *host, int port)
{
	struct addrinfo *res, *ai;
	int one = 1, rc = HQ_OK;

	if (resolve(host, port, &res, &ai) != HQ_OK)
		return HQ_EINVAL;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = HQ_EIO;
	} else {
		/* SO_REUSEADDR as the real sockets have it: connections of a
		 * previous run in TIME_WAIT do not count, a listener does */
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
			rc = HQ_EIO;
	}
	int e = errno;
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	errno = e;
	return rc;
}

void sock_addr_str(const struct sockaddr *sa, char *out, size_t outlen)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		port = ntohs(s4->sin_port);
		snprintf(out, outlen, "%s:%d", ip, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		port = ntohs(s6->sin6_port);
		snprintf(out, outlen, "[%s]:%d", ip, port);
	} else {
		snprintf(out, outlen, "unknown");
	}
}

int sock_accept(int lfd, char *addr, size_t addrlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return -1;
	/* writes are already coalesced to one send per connection per loop
	 * turn, so Nagle only adds delay (up to a delayed-ACK timeout) */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (addr)
		sock_addr_str((struct sockaddr *)&ss, addr, addrlen);
	return fd;
}

int sock_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}
