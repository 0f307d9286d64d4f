/* sock.h - socket helpers: listening sockets, nonblocking accept, addresses. */
#ifndef HQ_NET_SOCK_H
#define HQ_NET_SOCK_H

#include <stddef.h>
#include <sys/socket.h>

/* Open a nonblocking listening TCP socket on host:port (host "" = any, IPv4 and
 * IPv6 literals or names). reuseport: set SO_REUSEPORT so each worker can
 * own a listening socket on the same port and the kernel spreads connections). Returns fd >= 0, or HQ_EIO / HQ_EINVAL with errno. */
int sock_listen_tcp(const char *host, int port, int backlog, int reuseport);
/* Whether host:port could be bound without SO_REUSEPORT, i.e. nothing listens
 * there (a socket with SO_REUSEPORT would share the port with another
 * process's). HQ_OK, or HQ_EIO with errno (EADDRINUSE: in use), HQ_EINVAL.
 * Binds and closes at once: a listener started right after is not seen. */
int sock_port_free(const char *host, int port);
/* Accept one connection: nonblocking, cloexec, TCP_NODELAY.
 * Returns fd, or -1 with errno (EAGAIN when none). addr gets "ip:port". */
int sock_accept(int lfd, char *addr, size_t addrlen);
/* "ip:port" of a sockaddr. */
void sock_addr_str(const struct sockaddr *sa, char *out, size_t outlen);
/* Local port a socket is bound to (for ephemeral binds), or -1. */
int sock_local_port(int fd);

#endif
