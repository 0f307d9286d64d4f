/* err.c - text for hq_err codes. */
#include "core/err.h"

const char *hq_strerror(int err)
{
	switch (err) {
	case HQ_OK: return "ok";
	case HQ_EAGAIN: return "incomplete";
	case HQ_ENOMEM: return "out of memory";
	case HQ_EMALFORMED: return "malformed packet";
	case HQ_EPROTOCOL: return "protocol error";
	case HQ_ETOOLARGE: return "packet too large";
	case HQ_EVERSION: return "unsupported protocol version";
	case HQ_ETOPIC: return "invalid topic";
	case HQ_EALIAS: return "invalid topic alias";
	case HQ_EIO: return "i/o error";
	case HQ_EINVAL: return "invalid argument";
	case HQ_ENOTFOUND: return "not found";
	case HQ_EEXIST: return "already exists";
	case HQ_ELIMIT: return "limit exceeded";
	case HQ_ECLOSED: return "connection closed";
	case HQ_ERECVMAX: return "receive maximum exceeded";
	case HQ_EAUTH: return "not authorized";
	case HQ_EIDREJECT: return "client identifier not valid";
	}
	return "unknown error";
}
