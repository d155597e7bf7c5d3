/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * amilctl's renderers: one per reply type of the control protocol, schema
 * version 1 (docs/amilctl.md is the contract).  Each takes the parsed reply
 * and writes human output.  They read only the fields they show, so fields a
 * newer daemon adds are ignored; a missing or mistyped field of the right
 * reply prints as "-" (or "?") rather than failing, because a partial
 * screen helps an operator more than none.  Only a reply without its main
 * member (no "nodes" array in a nodes reply, ...) is refused.
 *
 * A renderer has the type amil_ctl_show_fn so amilctl's command table can
 * name it; amil_ctl_show_generic() renders any object (for commands that
 * have no dedicated renderer yet).
 */
#ifndef AMIL_CTL_SHOW_H
#define AMIL_CTL_SHOW_H

#include <stddef.h>

#include "cp_json.h"
#include "ctl_fmt.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AMIL_CTL_SCHEMA 1

/**
 * A renderer.  @return 0, or -EBADMSG when the reply lacks what this
 * renderer needs (@err then says what).
 */
typedef int amil_ctl_show_fn(const struct amil_json_value *reply, const struct amil_ctl_out *o,
			     char *err, size_t errlen);

/**
 * Check the envelope of a reply: an object with "schema": 1 and no "error".
 * @return 0; -EREMOTEIO when the daemon answered {"error": text} (@err
 *   holds its text); -EPROTO when the reply is not an object, has no
 *   numeric schema, or another schema version (@err says which).
 */
int amil_ctl_reply_check(const struct amil_json_value *reply, char *err, size_t errlen);

amil_ctl_show_fn amil_ctl_show_status;
amil_ctl_show_fn amil_ctl_show_nodes;
amil_ctl_show_fn amil_ctl_show_events;
amil_ctl_show_fn amil_ctl_show_dataplane_stats;
amil_ctl_show_fn amil_ctl_show_generic;

/** The column header line that amil_ctl_show_event_line() rows align to. */
void amil_ctl_show_event_header(const struct amil_ctl_out *o);

/**
 * One event as one line in fixed-width columns, for `events --follow`
 * (a streaming output cannot align on rows it has not seen yet).
 * @return 0, or -EBADMSG when @ev is not an object.
 */
int amil_ctl_show_event_line(const struct amil_json_value *ev, const struct amil_ctl_out *o);

#ifdef __cplusplus
}
#endif
#endif /* AMIL_CTL_SHOW_H */
