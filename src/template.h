/*-------------------------------------------------------------------------
 *
 * template.h
 *	  The {{...}} variables of an HTTP job's URL, headers and body: checked
 *	  when the job is scheduled, filled in when each attempt is sent.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHIME_TEMPLATE_H
#define CHIME_TEMPLATE_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"

#include "http.h"

/* Where a text goes: what a value put into it must respect */
typedef enum ChimeTemplatePlace
{
	CHIME_TPL_URL,    /* values other than secrets are percent-encoded */
	CHIME_TPL_HEADER, /* a value with a line break is refused */
	CHIME_TPL_BODY    /* anything goes */
} ChimeTemplatePlace;

/* The run an attempt belongs to, as its templates see it */
typedef struct ChimeRunContext
{
	int64                   runid;
	int64                   first_runid; /* the occurrence's first attempt */
	int32                   attempt;
	int64                   jobid;
	const char             *jobname; /* NULL: none */
	const char             *run_key; /* "": none */
	TimestampTz             scheduled_time;
	const char             *trigger;
	const char             *payload; /* JSON text, NULL: none */
	const ChimeHttpRequest *secrets; /* the secret values looked up */
} ChimeRunContext;

/*
 * Check every {{...}} of 'text' ('where': "url", "body", "header x");
 * 22023 naming an unknown or malformed one.  Returns the secret names it
 * refers to, in order.
 */
extern List *chime_template_refs(const char *text, const char *where);

/* Does 'text' refer to {{name}} (e.g. "run.idempotency_key")? */
extern bool chime_template_uses(const char *text, const char *name);

/*
 * Append 'text' to 'out' with every variable filled in from 'ctx'; false,
 * with *error (a message for the run's record, showing no secret), when a
 * value cannot be had or cannot go where it is.
 */
extern bool chime_template_fill(const char *text, ChimeTemplatePlace place,
								const ChimeRunContext *ctx, StringInfo out, char **error);

/* "42-1001": the same for each attempt of an occurrence */
extern char *chime_idempotency_key(const ChimeRunContext *ctx);

/* Is 'text' one JSON value? */
extern bool chime_text_is_json(const char *text);

#endif /* CHIME_TEMPLATE_H */
