/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * amilctl's side of the control sockets of amil-controlplane (libzmq 4.3,
 * plain C API):
 *
 *   <run-dir>/ctl.sock     ZMQ_REP on the daemon; we connect a ZMQ_REQ, send
 *                          one text frame ("status", "events 10", ...) and
 *                          read one JSON frame back.
 *   <run-dir>/events.sock  ZMQ_PUB on the daemon; we connect a ZMQ_SUB
 *                          subscribed to everything, one JSON event a frame.
 *
 * Why the checks before libzmq: zmq_connect() to an ipc endpoint succeeds
 * whether or not anyone listens and retries in the background, so a missing
 * daemon would only show as a timeout, and a permission problem not at all.
 * We therefore stat() the socket file (ENOENT: not running; EACCES on the
 * directory), access() it for read+write (EACCES: not in group amil), and
 * connect() a plain AF_UNIX socket once (ECONNREFUSED: a stale socket left
 * by a dead daemon).  That probe connection is closed at once; the daemon's
 * libzmq sees a peer that went away before its greeting, which it ignores.
 *
 * The REQ socket is made per request (a REQ that timed out is stuck in the
 * "expect reply" state and must be thrown away anyway), with ZMQ_LINGER 0 so
 * closing never waits, ZMQ_IMMEDIATE so a send does not queue to a pipe that
 * is not connected yet, and send/receive timeouts that share one deadline:
 * a request never takes longer than @timeout_ms in total.
 *
 * Threading: one thread per handle.
 */
#ifndef AMIL_CTL_IPC_H
#define AMIL_CTL_IPC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AMIL_CTL_RUN_DIR_DEFAULT "/run/amil"
#define AMIL_CTL_SOCK "ctl.sock"
#define AMIL_CTL_EVENTS_SOCK "events.sock"
/* A reply larger than this is refused (a confused peer must not make
 * amilctl allocate without bound). */
#define AMIL_CTL_MAX_REPLY_BYTES (64u << 20)

struct amil_ctl_ipc;

/**
 * Prepare to talk to the daemon whose sockets live in @run_dir.  Makes the
 * libzmq context; connects nothing yet.
 *
 * @param timeout_ms  bound on one request (send + reply), > 0.
 * @return the handle (caller owns it: amil_ctl_ipc_destroy()), or NULL with
 *   errno EINVAL (bad argument), ENAMETOOLONG (a socket path would not fit
 *   an AF_UNIX address) or ENOMEM.
 */
struct amil_ctl_ipc *amil_ctl_ipc_new(const char *run_dir, int timeout_ms);

/** Close every socket and the context, free @*cp, set it to NULL.  Accepts
 *  NULL and a pointer to NULL.  Never blocks (linger 0). */
void amil_ctl_ipc_destroy(struct amil_ctl_ipc **cp);

/**
 * Check that the unix socket at @path can be used, without libzmq.
 *
 * @param err, errlen  receives an operator-facing sentence on failure.
 * @return 0; -ENOENT (no such file, or the directory is missing);
 *   -EACCES (directory not searchable or socket not read+writable by us);
 *   -ENOTSOCK (exists but is not a socket); -ECONNREFUSED (a socket file
 *   with no listener: stale); -ENAMETOOLONG; other negative errno.
 */
int amil_ctl_ipc_check(const char *path, char *err, size_t errlen);

/**
 * Send @request (one text frame) on ctl.sock and wait for the one-frame
 * reply, within the handle's timeout in total.
 *
 * @param reply, reply_len  on success, a malloc'd NUL-terminated copy of the
 *   reply (caller frees) and its length.
 * @param err, errlen       operator-facing sentence on failure.
 * @return 0; the errors of amil_ctl_ipc_check(); -ETIMEDOUT (no answer in
 *   time); -EBADMSG (the reply had more than one frame, or was larger than
 *   AMIL_CTL_MAX_REPLY_BYTES); -EINTR (a signal arrived: the caller decides);
 *   -ENOMEM; -EIO (another libzmq failure, named in @err).
 */
int amil_ctl_ipc_request(struct amil_ctl_ipc *c, const char *request, char **reply,
			 size_t *reply_len, char *err, size_t errlen);

/**
 * Connect the events subscriber (subscribed to all messages).  Call before
 * asking for the event history so that nothing falls between the two.
 * @return 0, the errors of amil_ctl_ipc_check(), -EALREADY, or -EIO.
 */
int amil_ctl_ipc_subscribe(struct amil_ctl_ipc *c, char *err, size_t errlen);

/**
 * Wait up to @wait_ms for the next event message.
 *
 * @param msg, msg_len  on 1, a malloc'd NUL-terminated copy (caller frees);
 *   extra frames of a multi-frame message are discarded.
 * @return 1 (a message), 0 (none in time), -EINTR (a signal), -ENOTCONN
 *   (not subscribed), -ENOMEM, -EIO.
 */
int amil_ctl_ipc_next_event(struct amil_ctl_ipc *c, int wait_ms, char **msg, size_t *msg_len,
			    char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* AMIL_CTL_IPC_H */
