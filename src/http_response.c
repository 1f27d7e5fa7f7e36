/*-------------------------------------------------------------------------
 *
 * http_response.c
 *	  What a transfer receives and what becomes of it: libcurl's write and
 *	  header callbacks (the body counted and its start kept, the reason
 *	  phrase, Retry-After), and the ChimeHttpResult made of a hop that
 *	  ended, was refused or could not go on.
 *
 * The body is counted in the write callback and the transfer stopped past
 * cron.http_max_response_size; only its first cron.chime_http_max_logged_body
 * bytes are kept.  Every message and body in a result is scrubbed of the
 * request's secret values (chime_http_scrub).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <time.h>

#include "utils/timestamp.h"

#include "http_int.h"

/* ---- callbacks ----------------------------------------------------------- */

/*
 * libcurl's write callback: count the body, keep its start, and stop the
 * transfer (returning less than it was given) once it is too large.
 */
size_t
chime_http_write(char *data, size_t size, size_t nmemb, void *userp)
{
	HttpTransfer *t = userp;
	size_t        n = size * nmemb;

	t->bytes += n;
	if (t->bytes > chime_http_max_response_size)
	{
		t->too_big = true;
		return 0; /* libcurl stops the transfer */
	}
	if (t->body.len < chime_http_max_logged_body)
		appendBinaryStringInfo(&t->body, data, Min((int) n, chime_http_max_logged_body - t->body.len));
	return n;
}

/*
 * libcurl's header callback, called for each header line of each response
 * (of a 100 Continue too): the reason phrase of the last status line, and
 * Retry-After, in seconds or as a date.
 */
size_t
chime_http_header(char *data, size_t size, size_t nmemb, void *userp)
{
	HttpTransfer *t = userp;
	size_t        n = size * nmemb;

	if (n > 5 && strncmp(data, "HTTP/", 5) == 0)
	{
		/* a new response (after a redirect or a 100): "HTTP/1.1 200 OK" */
		const char *sp = memchr(data, ' ', n);
		const char *reason = sp ? memchr(sp + 1, ' ', n - (sp + 1 - data)) : NULL;
		size_t      len = 0;

		t->retry_after_s = 0;
		t->reason[0] = '\0';
		if (reason)
		{
			reason++;
			while (reason + len < data + n && reason[len] != '\r' && reason[len] != '\n')
				len++;
			snprintf(t->reason, sizeof(t->reason), "%.*s", (int) len, reason);
		}
	}
	else if (n > 12 && pg_strncasecmp(data, "retry-after:", 12) == 0)
	{
		char  value[64];
		long  secs;
		char *end;

		snprintf(value, sizeof(value), "%.*s", (int) (n - 12), data + 12);
		secs = strtol(value, &end, 10);
		if (end != value && secs >= 0)
			t->retry_after_s = secs;
		else
		{
			time_t when = curl_getdate(value, NULL);

			if (when > 0)
				t->retry_after_s = Max(0, when - time(NULL));
		}
	}
	return n;
}

/* ---- results ------------------------------------------------------------- */

/*
 * "doing: call failed: why", the message of a step of a transfer that a
 * libcurl call failed (*fault), in the current memory context.  It holds
 * the call and libcurl's words only, no value of the request.
 */
char *
chime_http_fault_message(const char *doing, const HttpFault *fault)
{
	if (fault->why != NULL)
		return psprintf("%s: %s failed: %s", doing, fault->call, fault->why);
	return psprintf("%s: %s failed", doing, fault->call);
}

/*
 * The result of a transfer that could not go on to its next step, or whose
 * response could not be read, because a libcurl call failed (*fault): no
 * status, no body, worth a retry.  The message goes to the server log too.
 */
ChimeHttpResult *
chime_http_failed(HttpTransfer *t, const char *doing, const HttpFault *fault)
{
	ChimeHttpResult *r = palloc0(sizeof(ChimeHttpResult));
	char            *message = chime_http_fault_message(doing, fault);

	elog(LOG, "pg_chime: %s", message);
	r->owner = t->owner;
	r->message = chime_http_scrub(t, message, strlen(message), NULL);
	r->retry = true;
	return r;
}

/* A result that is a refusal: not retried, no status, no body. */
ChimeHttpResult *
chime_http_refusal(HttpTransfer *t, const char *message)
{
	ChimeHttpResult *r = palloc0(sizeof(ChimeHttpResult));

	r->owner = t->owner;
	r->message = chime_http_scrub(t, message, strlen(message), NULL);
	return r;
}

/*
 * The result of a finished transfer (allocated in the current context).
 * Its status is read from libcurl when a response came, whole or cut for
 * its size; if it cannot be, a whole response fails (chime_http_failed),
 * and a cut one keeps its refusal without a status.
 */
ChimeHttpResult *
chime_http_result(HttpTransfer *t, CURLcode code)
{
	ChimeHttpResult *r;
	long             status = 0;
	long             ms = (long) ((GetCurrentTimestamp() - t->started) / 1000);
	char            *message;
	HttpFault        fault = {0};

	if (code == CURLE_OK || t->too_big)
		http_getinfo(t->easy, &fault, CURLINFO_RESPONSE_CODE, &status);
	if (fault.call != NULL)
	{
		if (!t->too_big)
			return chime_http_failed(t, "could not read the response", &fault);
		status = 0;
	}
	r = palloc0(sizeof(ChimeHttpResult));
	r->owner = t->owner;
	if (t->too_big)
	{
		message = psprintf("refused: response larger than cron.http_max_response_size (%d bytes)",
						   chime_http_max_response_size);
		r->status = (int) status;
	}
	else if (code != CURLE_OK && t->refused[0] != '\0')
		message = pstrdup(t->refused);
	else if (code == CURLE_OPERATION_TIMEDOUT)
	{
		message = psprintf("timeout after %d ms", t->timeout_ms);
		r->retry = true;
	}
	else if (code == CURLE_UNSUPPORTED_PROTOCOL)
		message = pstrdup("refused: only http and https are allowed");
	else if (code == CURLE_COULDNT_CONNECT && !t->via_proxy)
	{
		message = pstrdup("connection refused");
		r->retry = true;
	}
	else if (code != CURLE_OK)
	{
		message = pstrdup(t->error[0] ? t->error : curl_easy_strerror(code));
		r->retry = true;
	}
	else
	{
		r->status = (int) status;
		r->ok = status >= 200 && status < 300;
		r->retry = status == 429 || status >= 500;
		if ((status == 429 || status == 503) && t->retry_after_s > 0)
			r->retry_after_us = t->retry_after_s * USECS_PER_SEC;
		message = psprintf("%ld%s%s, " INT64_FORMAT " bytes, %ld ms", status,
						   t->reason[0] ? " " : "", t->reason, t->bytes, ms);
	}
	r->message = chime_http_scrub(t, message, strlen(message), NULL);
	if (t->body.len > 0 || r->status > 0)
	{
		int   len;
		char *body = chime_http_scrub(t, t->body.data, t->body.len, &len);

		r->body = pnstrdup(body, len);
	}
	return r;
}
