/*-------------------------------------------------------------------------
 *
 * http_request.c
 *	  HTTP requests and the secrets they carry: the request the scheduler
 *	  hands over, a transfer's copy of its secret values, and scrubbing
 *	  those values out of every message and recorded body.
 *
 * Secrets: no message or recorded body shows an expanded secret value;
 * each occurrence is replaced by {{secret.NAME}} (see chime_http_scrub).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "http_int.h"

/*
 * A zeroed request with its secrets copied in, in one allocation (see
 * http.h): the scheduler frees requests with pfree and knows nothing of
 * what they carry.
 */
ChimeHttpRequest *
chime_http_request_new(List *secrets)
{
	int               n = list_length(secrets);
	Size              size = offsetof(ChimeHttpRequest, secrets) + sizeof(ChimeHttpSecret) * n;
	ChimeHttpRequest *req;
	char             *p;
	ListCell         *lc;
	int               i = 0;

	foreach(lc, secrets)
	{
		ChimeHttpSecret *s = lfirst(lc);

		size += strlen(s->name) + 1 + strlen(s->value) + 1;
	}
	req = palloc0(size);
	p = (char *) &req->secrets[n];
	foreach(lc, secrets)
	{
		ChimeHttpSecret *s = lfirst(lc);

		req->secrets[i].name = strcpy(p, s->name);
		p += strlen(s->name) + 1;
		req->secrets[i].value = strcpy(p, s->value);
		p += strlen(s->value) + 1;
		i++;
	}
	req->nsecrets = n;
	return req;
}

/* qsort order of secrets: longest value first */
static int
request_longest_first(const void *a, const void *b)
{
	size_t la = strlen(((const ChimeHttpSecret *) a)->value);
	size_t lb = strlen(((const ChimeHttpSecret *) b)->value);

	return la > lb ? -1 : (la < lb ? 1 : 0);
}

/*
 * Keep with the transfer what it must know of the secrets of 'req': that
 * there are some, and their non-empty values (names with them), longest
 * first for chime_http_scrub.  In the current memory context, the
 * transfer's.
 */
void
chime_http_keep_secrets(HttpTransfer *t, const ChimeHttpRequest *req)
{
	t->carries_secret = req->nsecrets > 0;
	t->secrets = palloc0(sizeof(ChimeHttpSecret) * Max(req->nsecrets, 1));
	for (int i = 0; i < req->nsecrets; i++)
	{
		/* an empty value needs no scrubbing, but still makes it carry a secret */
		if (req->secrets[i].value[0] == '\0')
			continue;
		t->secrets[t->nsecrets].name = pstrdup(req->secrets[i].name);
		t->secrets[t->nsecrets].value = pstrdup(req->secrets[i].value);
		t->nsecrets++;
	}
	qsort(t->secrets, t->nsecrets, sizeof(ChimeHttpSecret), request_longest_first);
}

/* Free what chime_http_keep_secrets kept (none if it was not called). */
void
chime_http_drop_secrets(HttpTransfer *t)
{
	for (int i = 0; i < t->nsecrets; i++)
	{
		pfree(t->secrets[i].value);
		pfree(t->secrets[i].name);
	}
	if (t->secrets)
		pfree(t->secrets);
	t->secrets = NULL;
	t->nsecrets = 0;
}

/*
 * 'text' (of length len) with every occurrence of a secret value of the
 * transfer replaced by {{secret.NAME}}, NUL-terminated in the current
 * memory context; its length in *outlen if wanted.
 *
 * One scan, left to right: at each position the longest value that matches
 * is replaced and the scan goes on after it, so replacements are not
 * scanned again and no value survives whole, however values overlap.  The
 * match ignores ASCII case, as host names are case-insensitive and may come
 * back from libcurl in another case.  Every value is scrubbed, however
 * short: a secret of a character or two makes messages hard to read (each
 * occurrence of those characters goes), but a message never shows it.
 */
char *
chime_http_scrub(const HttpTransfer *t, const char *text, int len, int *outlen)
{
	StringInfoData out;
	int            i = 0;

	initStringInfo(&out);
	while (i < len)
	{
		const ChimeHttpSecret *hit = NULL;

		for (int k = 0; k < t->nsecrets && hit == NULL; k++)
		{
			int vlen = (int) strlen(t->secrets[k].value);

			if (vlen <= len - i && pg_strncasecmp(text + i, t->secrets[k].value, vlen) == 0)
				hit = &t->secrets[k];
		}
		if (hit)
		{
			appendStringInfo(&out, "{{secret.%s}}", hit->name);
			i += (int) strlen(hit->value);
		}
		else
			appendStringInfoChar(&out, text[i++]);
	}
	if (outlen)
		*outlen = out.len;
	return out.data;
}
