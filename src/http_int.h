/*-------------------------------------------------------------------------
 *
 * http_int.h
 *	  What the files of the HTTP engine share, and nothing outside them
 *	  sees: the state of a transfer, the settings the engine reads, the
 *	  checks of libcurl calls, and what each file lends the others.
 *
 *	  http_policy.c		settings, URL parsing, which addresses a job may reach
 *	  http_request.c	requests and the secrets they carry, scrubbing
 *	  http_response.c	what a transfer receives, and the result made of it
 *	  http.c			the engine: libcurl's multi-socket API, hops, redirects
 *
 *	  The scheduler sees only http.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHIME_HTTP_INT_H
#define CHIME_HTTP_INT_H

#include "postgres.h"

#include <curl/curl.h>

#include "datatype/timestamp.h"
#include "lib/ilist.h"
#include "lib/stringinfo.h"

#include "http.h"

/* Settings (http_policy.c); chime_http_max_in_flight is in http.h */
extern int   chime_http_default_timeout_ms;
extern int   chime_http_max_redirects;
extern int   chime_http_max_response_size;
extern int   chime_http_max_logged_body;
extern char *chime_http_proxy;

/*
 * One transfer: its request and, hop after hop (redirects), what the
 * callbacks saw.  Allocated in TopMemoryContext, freed by http.c's
 * http_free.
 */
typedef struct HttpTransfer
{
	dlist_node node; /* in http.c's list of transfers */
	void      *owner;
	CURL      *easy;              /* the request */
	bool       easy_added;        /* in the multi handle */
	CURL      *probe;             /* resolving this hop's host before the proxy
								   * is asked (NULL: none going) */
	bool               via_proxy; /* cron.http_proxy was set when it started */
	struct curl_slist *headers;
	char              *url;            /* this hop's */
	char              *origin;         /* the first URL's "scheme://host:port" */
	char               method[16];     /* this hop's */
	int                redirects;      /* followed so far */
	bool               carries_secret; /* the request has a {{secret.*}} */
	int                nsecrets;       /* the non-empty values, longest first */
	ChimeHttpSecret   *secrets;
	StringInfoData     body;  /* the first cron.http_max_logged_body bytes */
	int64              bytes; /* all of them */
	bool               too_big;
	int                allowed;      /* addresses the probe let through */
	char               refused[160]; /* why an address was refused ("" if none was) */
	char               reason[64];   /* the reason phrase of the last status line */
	int64              retry_after_s;
	TimestampTz        started;
	int                timeout_ms;
	char               error[CURL_ERROR_SIZE];
} HttpTransfer;

/*
 * The first libcurl call that failed while one transfer was prepared, moved
 * on or read: the call (with its option) and libcurl's word for why.  The
 * calls of a step are made in a row and the fault looked at once; a fault
 * fails that transfer (chime_http_failed), never the scheduler.
 */
typedef struct HttpFault
{
	const char *call; /* e.g. "curl_easy_setopt(CURLOPT_URL)"; NULL: none */
	const char *why;  /* libcurl's message; NULL: none to give */
} HttpFault;

/* Note 'call' in *fault, if it is the first to fail; true if it did not. */
static inline bool
http_fault(HttpFault *fault, const char *call, const char *why)
{
	if (fault->call == NULL)
	{
		fault->call = call;
		fault->why = why;
	}
	return false;
}

/* Check a CURLcode: true if CURLE_OK, else noted in *fault. */
static inline bool
http_easy_ok(HttpFault *fault, const char *call, CURLcode code)
{
	return code == CURLE_OK || http_fault(fault, call, curl_easy_strerror(code));
}

/* Check a CURLMcode: true if CURLM_OK, else noted in *fault. */
static inline bool
http_multi_ok(HttpFault *fault, const char *call, CURLMcode code)
{
	return code == CURLM_OK || http_fault(fault, call, curl_multi_strerror(code));
}

/*
 * curl_easy_setopt and curl_easy_getinfo, checked into *fault; once a call
 * of the row has failed, the next ones are not made.
 */
#define http_setopt(easy, fault, option, value) \
	do \
	{ \
		if ((fault)->call == NULL) \
			(void) http_easy_ok((fault), "curl_easy_setopt(" #option ")", \
								curl_easy_setopt((easy), (option), (value))); \
	} while (0)

#define http_getinfo(easy, fault, info, ptr) \
	do \
	{ \
		if ((fault)->call == NULL) \
			(void) http_easy_ok((fault), "curl_easy_getinfo(" #info ")", \
								curl_easy_getinfo((easy), (info), (ptr))); \
	} while (0)

/* http_policy.c */
extern bool          chime_http_parse_url(const char *url, char **normal, char **scheme,
										  char **origin);
extern curl_socket_t chime_http_open_socket(void *clientp, curlsocktype purpose,
											struct curl_sockaddr *address);
extern curl_socket_t chime_http_probe_socket(void *clientp, curlsocktype purpose,
											 struct curl_sockaddr *address);

/* http_request.c */
extern void  chime_http_keep_secrets(HttpTransfer *t, const ChimeHttpRequest *req);
extern void  chime_http_drop_secrets(HttpTransfer *t);
extern char *chime_http_scrub(const HttpTransfer *t, const char *text, int len,
							  int *outlen);

/* http_response.c */
extern size_t           chime_http_write(char *data, size_t size, size_t nmemb, void *userp);
extern size_t           chime_http_header(char *data, size_t size, size_t nmemb, void *userp);
extern ChimeHttpResult *chime_http_result(HttpTransfer *t, CURLcode code);
extern ChimeHttpResult *chime_http_refusal(HttpTransfer *t, const char *message);
extern ChimeHttpResult *chime_http_failed(HttpTransfer *t, const char *doing,
										  const HttpFault *fault);
extern char            *chime_http_fault_message(const char *doing, const HttpFault *fault);

#endif /* CHIME_HTTP_INT_H */
