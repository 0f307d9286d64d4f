/*
 * err.h - the one error vocabulary of hamqtt.
 *
 * Every fallible function returns int: HQ_OK (0) on success, otherwise one of the
 * negative codes below (libuv convention). Peer-caused errors are distinguished
 * finely enough that exactly one function (brk_reason_from_err, broker layer) can
 * map them to MQTT v5 reason codes.
 */
#ifndef HQ_CORE_ERR_H
#define HQ_CORE_ERR_H

enum hq_err {
	HQ_OK = 0,
	HQ_EAGAIN = -1,        /* need more input bytes / would block; not an error of the peer */
	HQ_ENOMEM = -2,        /* allocation failed (wrappers normally abort instead) */
	HQ_EMALFORMED = -3,    /* bytes do not form a valid packet: v5 reason 0x81 */
	HQ_EPROTOCOL = -4,     /* well formed but forbidden by the protocol: v5 reason 0x82 */
	HQ_ETOOLARGE = -5,     /* packet exceeds the maximum packet size: v5 reason 0x95 */
	HQ_EVERSION = -6,      /* unsupported protocol name/level: CONNACK 0x84 / v3 rc 1 */
	HQ_ETOPIC = -7,        /* invalid topic name or filter: v5 0x90 (name) / 0x8F (filter) */
	HQ_EALIAS = -8,        /* topic alias invalid / out of range: v5 0x94 */
	HQ_EIO = -9,           /* system call failed; errno holds the detail */
	HQ_EINVAL = -10,       /* bad argument or bad configuration value */
	HQ_ENOTFOUND = -11,
	HQ_EEXIST = -12,
	HQ_ELIMIT = -13,       /* a configured limit was hit (quota exceeded: v5 0x97) */
	HQ_ECLOSED = -14,      /* the peer closed the connection */
	HQ_ERECVMAX = -15,     /* peer exceeded our receive maximum: v5 0x93 */
	HQ_EAUTH = -16,        /* not authorized: v5 0x87 */
	HQ_EIDREJECT = -17,    /* client identifier not valid: v5 0x85 / v3 rc 2 */
};

/* Short human text for an error code, for logs. Never NULL. */
const char *hq_strerror(int err);

#endif
