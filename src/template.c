/*-------------------------------------------------------------------------
 *
 * template.c
 *	  The {{...}} variables of an HTTP job's URL, headers and body.
 *
 * A job's text may name its owner's secrets ({{secret.NAME}}) and the run
 * each attempt belongs to ({{run.id}}, {{run.attempt}}, {{run.key}},
 * {{run.scheduled_time}}, {{run.trigger}}, {{run.idempotency_key}},
 * {{job.id}}, {{job.name}}, {{payload}}, {{payload.FIELD}}).  Any other
 * {{...}} is refused when the job is scheduled.  Each attempt fills them in
 * with one pass over the job's own text: a value put in is never read for
 * variables again, so a payload or a secret that contains "{{secret.x}}"
 * stays as it is.
 *
 * In a URL every value but a secret's is percent-encoded (a payload field
 * cannot add a path segment or a query parameter); in a header a value
 * with a line break is refused; in a body values go in as they are.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"

#include "api.h"
#include "compat.h"
#include "pg_chime.h"
#include "template.h"

#define TPL_OPEN  "{{"
#define TPL_CLOSE "}}"
#define TPL_HINT  "The variables are {{run.id}}, {{run.attempt}}, {{run.key}}, {{run.scheduled_time}}, " \
				 "{{run.trigger}}, {{run.idempotency_key}}, {{job.id}}, {{job.name}}, {{payload}}, " \
				 "{{payload.FIELD}} and {{secret.NAME}}."

typedef enum TplVar
{
	TPL_RUN_ID,
	TPL_RUN_ATTEMPT,
	TPL_RUN_KEY,
	TPL_RUN_SCHEDULED_TIME,
	TPL_RUN_TRIGGER,
	TPL_RUN_IDEMPOTENCY_KEY,
	TPL_JOB_ID,
	TPL_JOB_NAME,
	TPL_PAYLOAD,
	TPL_PAYLOAD_FIELD,
	TPL_SECRET,
	TPL_UNKNOWN
} TplVar;

static const struct
{
	const char *name;
	TplVar      var;
} tpl_names[] = {
	{"run.id", TPL_RUN_ID},
	{"run.attempt", TPL_RUN_ATTEMPT},
	{"run.key", TPL_RUN_KEY},
	{"run.scheduled_time", TPL_RUN_SCHEDULED_TIME},
	{"run.trigger", TPL_RUN_TRIGGER},
	{"run.idempotency_key", TPL_RUN_IDEMPOTENCY_KEY},
	{"job.id", TPL_JOB_ID},
	{"job.name", TPL_JOB_NAME},
	{"payload", TPL_PAYLOAD},
};

/* A payload field path: names of letters, digits, '_' and '-', joined by '.' */
static bool
tpl_path_ok(const char *path, int len)
{
	bool empty = true;

	for (int i = 0; i < len; i++)
	{
		unsigned char ch = (unsigned char) path[i];

		if (ch == '.')
		{
			if (empty)
				return false;
			empty = true;
		}
		else if (isalnum(ch) || ch == '_' || ch == '-')
			empty = false;
		else
			return false;
	}
	return !empty;
}

/* What {{name}} (of length len) refers to */
static TplVar
tpl_var(const char *name, int len)
{
	for (int i = 0; i < lengthof(tpl_names); i++)
		if ((int) strlen(tpl_names[i].name) == len && strncmp(name, tpl_names[i].name, len) == 0)
			return tpl_names[i].var;
	if (len > 8 && strncmp(name, "payload.", 8) == 0 && tpl_path_ok(name + 8, len - 8))
		return TPL_PAYLOAD_FIELD;
	if (len > 7 && strncmp(name, "secret.", 7) == 0)
		return TPL_SECRET;
	return TPL_UNKNOWN;
}

List *
chime_template_refs(const char *text, const char *where)
{
	List       *secrets = NIL;
	const char *p = text;
	const char *open;

	while (text && (open = strstr(p, TPL_OPEN)) != NULL)
	{
		const char *name = open + 2;
		const char *close = strstr(name, TPL_CLOSE);
		int         len;

		if (close == NULL)
			break; /* no variable: the rest is text */
		len = (int) (close - name);
		switch (tpl_var(name, len))
		{
			case TPL_SECRET:
				if (!chime_secret_name_ok(name + 7, len - 7))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("invalid secret reference \"%.*s\" in %s", len + 4, open, where),
							 errhint("Refer to a secret as {{secret.NAME}}. %s", CHIME_SECRET_NAME_HINT)));
				secrets = lappend(secrets, pnstrdup(name + 7, len - 7));
				break;
			case TPL_UNKNOWN:
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unknown template variable \"%.*s%s\" in %s",
								pg_mbcliplen(open, len + 4, Min(len + 4, 84)), open, len + 4 > 84 ? "..." : "", where),
						 errhint("%s", TPL_HINT)));
				break;
			default:
				break;
		}
		p = close + 2;
	}
	return secrets;
}

bool
chime_template_uses(const char *text, const char *name)
{
	char *needle;
	bool  found;

	if (text == NULL)
		return false;
	needle = psprintf(TPL_OPEN "%s" TPL_CLOSE, name);
	found = strstr(text, needle) != NULL;
	pfree(needle);
	return found;
}

char *
chime_idempotency_key(const ChimeRunContext *ctx)
{
	return psprintf(INT64_FORMAT "-" INT64_FORMAT, ctx->jobid,
					ctx->first_runid > 0 ? ctx->first_runid : ctx->runid);
}

/*
 * (The parser recurses: nesting deeper than the stack allows is an error,
 * which here means "not JSON", never the end of the scheduler.)
 */
bool
chime_text_is_json(const char *text)
{
	MemoryContext               cxt = CurrentMemoryContext;
	volatile JsonParseErrorType r = JSON_SUCCESS;

	PG_TRY();
	{
		JsonParseErrorType got;

		CHIME_JSON_PARSE(got, text, strlen(text), GetDatabaseEncoding());
		r = got;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		r = JSON_INVALID_TOKEN;
	}
	PG_END_TRY();
	return r == JSON_SUCCESS;
}

/* An instant as ISO 8601 in UTC: 2026-12-01T03:00:00Z (microseconds when any) */
static char *
tpl_iso_utc(TimestampTz t)
{
	struct pg_tm tm;
	fsec_t       fsec;

	if (timestamp2tm(t, NULL, &tm, &fsec, NULL, NULL) != 0)
		return pstrdup("");
	if (fsec != 0)
		return psprintf("%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year, tm.tm_mon, tm.tm_mday,
						tm.tm_hour, tm.tm_min, tm.tm_sec, (int) fsec);
	return psprintf("%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year, tm.tm_mon, tm.tm_mday,
					tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/*
 * The value at 'path' (a.b.c) of the payload: a string as it is, anything
 * else as JSON text; NULL (with *error) when there is none.
 */
static char *
tpl_payload_field(const char *payload, const char *path, int len, char **error)
{
	MemoryContext cxt = CurrentMemoryContext;
	Jsonb *volatile jb;
	JsonbContainer *c;
	JsonbValue      v;
	const char     *p = path;
	const char     *end = path + len;

	if (payload == NULL)
	{
		*error = psprintf("failed: {{payload.%.*s}}: the run has no payload", len, path);
		return NULL;
	}
	/* (the scheduler sends outside a transaction: an error here ends the attempt, not it) */
	PG_TRY();
	{
		jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(payload)));
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		jb = NULL;
	}
	PG_END_TRY();
	if (jb == NULL)
	{
		*error = psprintf("failed: {{payload.%.*s}}: the payload could not be read", len, path);
		return NULL;
	}
	c = &jb->root;
	for (;;)
	{
		const char *dot = memchr(p, '.', end - p);
		int         n = (int) ((dot ? dot : end) - p);

		if (!JsonContainerIsObject(c) || getKeyJsonValueFromContainer(c, p, n, &v) == NULL ||
			v.type == jbvNull)
		{
			*error = psprintf("failed: {{payload.%.*s}}: the payload has no field \"%.*s\"", len, path,
							  (int) ((dot ? dot : end) - path), path);
			return NULL;
		}
		if (dot == NULL)
			break;
		if (v.type != jbvBinary)
		{
			*error = psprintf("failed: {{payload.%.*s}}: the payload has no field \"%.*s\"", len, path,
							  len, path);
			return NULL;
		}
		c = v.val.binary.data;
		p = dot + 1;
	}
	switch (v.type)
	{
		case jbvString:
			return pnstrdup(v.val.string.val, v.val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v.val.numeric)));
		case jbvBool:
			return pstrdup(v.val.boolean ? "true" : "false");
		case jbvBinary:
			return JsonbToCString(NULL, v.val.binary.data, v.val.binary.len);
		default:
			return pstrdup("");
	}
}

/* The secret 'name' (of length len) looked up for this request */
static const char *
tpl_secret(const ChimeRunContext *ctx, const char *name, int len)
{
	const ChimeHttpRequest *req = ctx->secrets;

	for (int i = 0; req && i < req->nsecrets; i++)
		if ((int) strlen(req->secrets[i].name) == len && strncmp(req->secrets[i].name, name, len) == 0)
			return req->secrets[i].value;
	return NULL;
}

/* Append 'value' percent-encoded (all but the unreserved characters) */
static void
tpl_append_encoded(StringInfo out, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *) value; *p; p++)
	{
		if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~')
			appendStringInfoChar(out, (char) *p);
		else
		{
			appendStringInfoChar(out, '%');
			appendStringInfoChar(out, hex[*p >> 4]);
			appendStringInfoChar(out, hex[*p & 15]);
		}
	}
}

bool
chime_template_fill(const char *text, ChimeTemplatePlace place, const ChimeRunContext *ctx,
					StringInfo out, char **error)
{
	const char *p = text;
	const char *open;

	while ((open = strstr(p, TPL_OPEN)) != NULL)
	{
		const char *name = open + 2;
		const char *close = strstr(name, TPL_CLOSE);
		int         len;
		const char *value = NULL;
		bool        secret = false;

		if (close == NULL)
			break;
		len = (int) (close - name);
		appendBinaryStringInfo(out, p, open - p);
		switch (tpl_var(name, len))
		{
			case TPL_RUN_ID:
				value = psprintf(INT64_FORMAT, ctx->runid);
				break;
			case TPL_RUN_ATTEMPT:
				value = psprintf("%d", ctx->attempt);
				break;
			case TPL_RUN_KEY:
				value = ctx->run_key ? ctx->run_key : "";
				break;
			case TPL_RUN_SCHEDULED_TIME:
				value = tpl_iso_utc(ctx->scheduled_time);
				break;
			case TPL_RUN_TRIGGER:
				value = ctx->trigger ? ctx->trigger : "";
				break;
			case TPL_RUN_IDEMPOTENCY_KEY:
				value = chime_idempotency_key(ctx);
				break;
			case TPL_JOB_ID:
				value = psprintf(INT64_FORMAT, ctx->jobid);
				break;
			case TPL_JOB_NAME:
				value = ctx->jobname ? ctx->jobname : "";
				break;
			case TPL_PAYLOAD:
				value = ctx->payload ? ctx->payload : "null";
				break;
			case TPL_PAYLOAD_FIELD:
				value = tpl_payload_field(ctx->payload, name + 8, len - 8, error);
				if (value == NULL)
					return false;
				break;
			case TPL_SECRET:
				secret = true;
				value = tpl_secret(ctx, name + 7, len - 7);
				if (value == NULL)
				{
					*error = psprintf("failed: secret \"%.*s\" does not exist", len - 7, name + 7);
					return false;
				}
				break;
			case TPL_UNKNOWN:
				/* (refused when the job was scheduled; a stored row may predate that) */
				appendBinaryStringInfo(out, open, len + 4);
				p = close + 2;
				continue;
		}
		if ((place == CHIME_TPL_HEADER || (secret && place == CHIME_TPL_URL)) &&
			strpbrk(value, "\r\n") != NULL)
		{
			*error = psprintf("failed: {{%.*s}} contains a line break; it cannot go into a header", len, name);
			return false;
		}
		if (place == CHIME_TPL_URL && !secret)
			tpl_append_encoded(out, value);
		else
			appendStringInfoString(out, value);
		if ((Size) out->len + strlen(close + 2) > CHIME_MAX_EXPANDED_LEN)
		{
			*error = psprintf("failed: with its secrets and variables in place the request is longer than %d bytes",
							  CHIME_MAX_EXPANDED_LEN);
			return false;
		}
		p = close + 2;
	}
	appendStringInfoString(out, p);
	return true;
}
