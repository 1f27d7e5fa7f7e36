/*-------------------------------------------------------------------------
 *
 * http.h
 *	  HTTP jobs: one libcurl multi handle driven from the scheduler's wait
 *	  loop (http.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHIME_HTTP_H
#define CHIME_HTTP_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

/* A secret expanded into a request: messages are scrubbed of its value */
typedef struct ChimeHttpSecret
{
	char *name;
	char *value;
} ChimeHttpSecret;

/*
 * A request, secrets already in place (it lives only in memory).  The
 * secrets expanded into it are kept with it, in the same allocation (see
 * chime_http_request_new), so that no message about it shows their values
 * and a redirect to another origin can be refused.
 */
typedef struct ChimeHttpRequest
{
	char           *url;
	char           *method;
	List           *headers; /* "Name: value" strings */
	char           *body;    /* NULL: none */
	int             timeout_ms;
	int             nsecrets; /* secrets expanded into the URL, headers or body */
	ChimeHttpSecret secrets[FLEXIBLE_ARRAY_MEMBER];
} ChimeHttpRequest;

/* What became of a transfer */
typedef struct ChimeHttpResult
{
	void *owner;          /* what chime_http_start was given */
	bool  ok;             /* a 2xx response */
	bool  retry;          /* a retry could change the outcome */
	int   status;         /* HTTP status, 0 if none came */
	int64 retry_after_us; /* Retry-After of a 429 or 503 (0: none) */
	char *message;        /* the one-line return_message */
	char *body;           /* the start of the response body, NULL if none */
} ChimeHttpResult;

/*
 * A zeroed request carrying 'secrets' (a List of ChimeHttpSecret *), names
 * and values copied into the same allocation, in the current memory
 * context: pfree() of the request frees them with it.
 */
extern ChimeHttpRequest *chime_http_request_new(List *secrets);

/* The settings, defined from _PG_init */
extern void chime_http_define_settings(void);

extern int chime_http_max_in_flight;

/* Start the engine in this process (the scheduler); returns the fd to wait on. */
extern int chime_http_init(void);

/* Start a transfer; false (and *error) when it cannot even start. */
extern bool chime_http_start(void *owner, const ChimeHttpRequest *req, char **error);

/* How many transfers are going */
extern int chime_http_in_flight(void);

/* Milliseconds until libcurl wants to be called for its timers (-1: none) */
extern long chime_http_timeout(void);

/*
 * Let libcurl move the transfers on (the fd was readable or a timer is
 * due); returns the ChimeHttpResult of the transfers that ended.
 */
extern List *chime_http_work(void);

/*
 * Stop every transfer whose owner 'match' accepts (arg is passed along);
 * returns their ChimeHttpResult, as chime_http_work does (ok and retry
 * false, status 0, the given message), in the current memory context.
 */
extern List *chime_http_cancel(bool (*match)(void *owner, void *arg), void *arg,
							   const char *message);

#endif /* CHIME_HTTP_H */
