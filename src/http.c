/*-------------------------------------------------------------------------
 *
 * http.c
 *	  HTTP jobs: the transfer engine, one libcurl multi handle driven from
 *	  the scheduler's wait loop.  Starting transfers, libcurl's socket and
 *	  timer callbacks, hops (the probe before a proxy, redirects), results
 *	  and cancelling.  What jobs may reach is in http_policy.c, secrets in
 *	  http_request.c, what a response becomes in http_response.c.
 *
 * libcurl tells us which sockets it waits on (socket callback) and when it
 * wants to be called back (timer callback).  The sockets go into an epoll
 * set of our own, whose descriptor the scheduler waits on beside its latch
 * and postmaster death, so no transfer, however slow, delays anything
 * else.  Connections are kept alive and reused between runs.
 *
 * Safety: only http and https, also after redirects; at most
 * cron.http_max_redirects of them; the body is counted in the write
 * callback and the transfer stopped past cron.http_max_response_size.
 * Every address is checked before connecting (http_policy.c).
 *
 * Failures: every libcurl call is checked.  One that fails while a
 * transfer is prepared, moved on to its next hop or read fails that
 * transfer, with a message naming the call and libcurl's reason; only the
 * multi handle failing at chime_http_init is an ERROR.
 *
 * Proxies: the proxy settings of the server's environment (http_proxy,
 * HTTPS_PROXY, ALL_PROXY, NO_PROXY...) are ignored; cron.http_proxy is the
 * only proxy.  Through it, the connections go to the proxy, which resolves
 * the target's name itself, so the socket callback cannot see the target.
 * Each hop therefore starts with a probe: a second easy handle for the same
 * URL, without proxy, whose socket opening callback checks every address
 * libcurl's own resolver (asynchronous, as for any transfer) gives for the
 * host, and refuses to open any socket.  The request goes to the proxy
 * only when every address passed; one refused address refuses the hop.
 * Redirects are followed here rather than by libcurl (for every transfer,
 * with or without a proxy), so each hop is probed, and so the origin rule
 * below can act before anything is sent to the new origin.
 *
 * The limit of the probe: the proxy resolves the name again, and may get
 * another answer than ours (another resolver, or a DNS answer that changes
 * between the two lookups), so a name can still lead the proxy to a denied
 * network; the proxy's own rules should deny the networks it must not reach.
 * Sending the checked address to the proxy instead of the name would close
 * that gap, but it takes a CONNECT tunnel for every target, plain http
 * included, which many proxies allow only to port 443, and it defeats the
 * proxies' rules by host name; so the name is sent.  The proxy itself,
 * chosen by a superuser, is not checked against the lists.
 *
 * Redirects: one to another origin (scheme, host or port) is refused when
 * the request carries a secret ({{secret.*}} in its URL, a header or the
 * body): libcurl would forward custom headers, and on 307 or 308 the body,
 * to wherever the server points.  Without secrets such redirects are
 * followed, Authorization and Cookie headers dropped, as libcurl does.  The
 * method changes as libcurl's (and browsers') rules say: 303 makes any
 * method but HEAD a GET, 301 and 302 make a POST a GET, without the body.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/epoll.h>
#include <unistd.h>

#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "http_int.h"

static CURLM      *http_multi = NULL;
static int         http_epoll = -1;
static long        http_timer_ms = -1; /* libcurl's wish, from when it was set */
static TimestampTz http_timer_set = 0;
static int         http_running = 0;
static dlist_head  http_transfers = DLIST_STATIC_INIT(http_transfers);

/* ---- libcurl's callbacks for the multi handle ---------------------------- */

/*
 * libcurl's socket callback: watch socket 's' for what libcurl waits on,
 * in the epoll set, or stop watching it.  (It must not fail: a -1 would
 * stop the whole multi handle.)
 */
static int
http_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.data.fd = s;
	if (what == CURL_POLL_REMOVE)
	{
		(void) epoll_ctl(http_epoll, EPOLL_CTL_DEL, s, NULL);
		return 0;
	}
	if (what & CURL_POLL_IN)
		ev.events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev.events |= EPOLLOUT;
	if (epoll_ctl(http_epoll, EPOLL_CTL_MOD, s, &ev) != 0 && errno == ENOENT)
		(void) epoll_ctl(http_epoll, EPOLL_CTL_ADD, s, &ev);
	return 0;
}

/* libcurl's timer callback: when it wants chime_http_work (-1: never). */
static int
http_timer(CURLM *multi, long timeout_ms, void *userp)
{
	http_timer_ms = timeout_ms;
	http_timer_set = GetCurrentTimestamp();
	return 0;
}

/* ---- the engine ---------------------------------------------------------- */

/* curl_multi_setopt, checked into *fault as http_setopt does */
#define http_multi_setopt(multi, fault, option, value) \
	do \
	{ \
		if ((fault)->call == NULL) \
			(void) http_multi_ok((fault), "curl_multi_setopt(" #option ")", \
								 curl_multi_setopt((multi), (option), (value))); \
	} while (0)

/*
 * Start the engine in this process (the scheduler): libcurl, the epoll set
 * and the multi handle; the epoll set's descriptor, for the scheduler to
 * wait on.  Any failure is an ERROR: without them there is no engine.
 */
int
chime_http_init(void)
{
	CURLcode  code = curl_global_init(CURL_GLOBAL_DEFAULT);
	HttpFault fault = {0};

	if (code != CURLE_OK)
		elog(ERROR, "pg_chime: could not initialise libcurl: %s", curl_easy_strerror(code));
	http_epoll = epoll_create1(EPOLL_CLOEXEC);
	if (http_epoll < 0)
		elog(ERROR, "pg_chime: could not create an epoll set: %m");
	http_multi = curl_multi_init();
	if (http_multi == NULL)
		(void) http_fault(&fault, "curl_multi_init", NULL);
	http_multi_setopt(http_multi, &fault, CURLMOPT_SOCKETFUNCTION, http_socket);
	http_multi_setopt(http_multi, &fault, CURLMOPT_TIMERFUNCTION, http_timer);
	http_multi_setopt(http_multi, &fault, CURLMOPT_MAXCONNECTS, (long) Max(chime_http_max_in_flight, 16));
	if (fault.call != NULL)
		elog(ERROR, "pg_chime: %s",
			 chime_http_fault_message("could not set up a libcurl multi handle", &fault));
	return http_epoll;
}

int
chime_http_in_flight(void)
{
	return http_running;
}

long
chime_http_timeout(void)
{
	long left;

	if (http_timer_ms < 0)
		return -1;
	left = http_timer_ms - (long) ((GetCurrentTimestamp() - http_timer_set) / 1000);
	return Max(left, 0);
}

/* Milliseconds left of the transfer's timeout */
static long
http_time_left(const HttpTransfer *t)
{
	return t->timeout_ms - (long) ((GetCurrentTimestamp() - t->started) / 1000);
}

/*
 * Take an easy handle (a transfer's 'what': request or probe) out of the
 * multi handle.  A failure is a WARNING and nothing more: the handle is
 * cleaned up or set up again next, either way.
 */
static void
http_remove(CURL *easy, const char *what)
{
	CURLMcode code = curl_multi_remove_handle(http_multi, easy);

	if (code != CURLM_OK)
		elog(WARNING, "pg_chime: libcurl could not remove a %s: %s", what, curl_multi_strerror(code));
}

/*
 * Append a copy of 'line' to *list.  False, noted in *fault, when libcurl
 * has no memory for it: *list is then as it was (curl_slist_append returns
 * NULL and leaves the list alone), still the caller's to free.
 */
static bool
http_slist_append(struct curl_slist **list, const char *line, HttpFault *fault)
{
	struct curl_slist *more = curl_slist_append(*list, line);

	if (more == NULL)
		return http_fault(fault, "curl_slist_append", "out of memory");
	*list = more;
	return true;
}

/* Forget a transfer: out of the multi handle, its handles and memory freed. */
static void
http_free(HttpTransfer *t)
{
	if (t->probe)
	{
		http_remove(t->probe, "probe");
		curl_easy_cleanup(t->probe);
	}
	if (t->easy_added)
		http_remove(t->easy, "transfer");
	curl_easy_cleanup(t->easy);
	curl_slist_free_all(t->headers);
	chime_http_drop_secrets(t);
	if (t->url)
		pfree(t->url);
	if (t->origin)
		pfree(t->origin);
	pfree(t->body.data);
	dlist_delete(&t->node);
	pfree(t);
	http_running--;
}

/*
 * Start a probe of this hop's host (see the file's header): false, with
 * the failing call in *fault (clear on entry), if it cannot start.
 */
static bool
http_start_probe(HttpTransfer *t, long left_ms, HttpFault *fault)
{
	CURL *probe = curl_easy_init();

	if (probe == NULL)
		return http_fault(fault, "curl_easy_init", NULL);
	t->allowed = 0;
	http_setopt(probe, fault, CURLOPT_URL, t->url);
	http_setopt(probe, fault, CURLOPT_PRIVATE, t);
	http_setopt(probe, fault, CURLOPT_NOSIGNAL, 1L);
	http_setopt(probe, fault, CURLOPT_PROTOCOLS_STR, "http,https");
	http_setopt(probe, fault, CURLOPT_PROXY, "");
	http_setopt(probe, fault, CURLOPT_CONNECT_ONLY, 1L);
	http_setopt(probe, fault, CURLOPT_FRESH_CONNECT, 1L);
	http_setopt(probe, fault, CURLOPT_FORBID_REUSE, 1L);
	http_setopt(probe, fault, CURLOPT_OPENSOCKETFUNCTION, chime_http_probe_socket);
	http_setopt(probe, fault, CURLOPT_OPENSOCKETDATA, t);
	http_setopt(probe, fault, CURLOPT_ERRORBUFFER, t->error);
	http_setopt(probe, fault, CURLOPT_TIMEOUT_MS, left_ms);
	if (fault->call == NULL)
		(void) http_multi_ok(fault, "curl_multi_add_handle", curl_multi_add_handle(http_multi, probe));
	if (fault->call != NULL)
	{
		curl_easy_cleanup(probe);
		return false;
	}
	t->probe = probe;
	return true;
}

/*
 * Send this hop's request: false, with the failing call in *fault (clear
 * on entry), if it cannot start.
 */
static bool
http_send(HttpTransfer *t, long left_ms, HttpFault *fault)
{
	http_setopt(t->easy, fault, CURLOPT_TIMEOUT_MS, left_ms);
	if (fault->call == NULL)
		(void) http_multi_ok(fault, "curl_multi_add_handle", curl_multi_add_handle(http_multi, t->easy));
	if (fault->call != NULL)
		return false;
	t->easy_added = true;
	return true;
}

/*
 * Start this hop: through a proxy the probe of its host, else its request.
 * False, with the failing call in *fault (clear on entry), if it cannot
 * start.
 */
static bool
http_hop(HttpTransfer *t, HttpFault *fault)
{
	long left = Max(http_time_left(t), 1);

	t->refused[0] = '\0';
	t->error[0] = '\0';
	if (t->via_proxy)
		return http_start_probe(t, left, fault);
	return http_send(t, left, fault);
}

/*
 * Start a transfer for 'req' (which the caller may free on return: what is
 * needed is copied), owned by 'owner'.  False, with *error, if it cannot
 * start: then a libcurl call failed, and *error names it.
 */
bool
chime_http_start(void *owner, const ChimeHttpRequest *req, char **error)
{
	HttpTransfer *t;
	CURL         *easy = curl_easy_init();
	HttpFault     fault = {0};
	char         *normal;
	char         *scheme;
	char         *origin;
	char         *message;
	ListCell     *lc;
	MemoryContext old;

	if (easy == NULL)
	{
		(void) http_fault(&fault, "curl_easy_init", NULL);
		*error = chime_http_fault_message("could not start a transfer", &fault);
		elog(LOG, "pg_chime: %s", *error);
		return false;
	}
	/* libcurl says what is wrong with a URL that does not parse */
	if (!chime_http_parse_url(req->url, &normal, &scheme, &origin))
		origin = NULL;
	old = MemoryContextSwitchTo(TopMemoryContext);
	t = palloc0(sizeof(HttpTransfer));
	t->owner = owner;
	t->easy = easy;
	initStringInfo(&t->body);
	t->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : chime_http_default_timeout_ms;
	t->via_proxy = chime_http_proxy != NULL && chime_http_proxy[0] != '\0';
	t->url = pstrdup(req->url);
	t->origin = origin ? pstrdup(origin) : NULL;
	strlcpy(t->method, req->method, sizeof(t->method));
	chime_http_keep_secrets(t, req);
	foreach(lc, req->headers)
	{
		if (!http_slist_append(&t->headers, lfirst(lc), &fault))
			break;
	}
	dlist_push_tail(&http_transfers, &t->node);
	http_running++;
	MemoryContextSwitchTo(old);

	http_setopt(easy, &fault, CURLOPT_URL, req->url);
	http_setopt(easy, &fault, CURLOPT_PRIVATE, t);
	http_setopt(easy, &fault, CURLOPT_NOSIGNAL, 1L);
	http_setopt(easy, &fault, CURLOPT_PROTOCOLS_STR, "http,https");
	/* "" is no proxy, whatever the environment says */
	http_setopt(easy, &fault, CURLOPT_PROXY, t->via_proxy ? chime_http_proxy : "");
	/* and no_proxy in the environment does not bypass cron.http_proxy */
	http_setopt(easy, &fault, CURLOPT_NOPROXY, "");
	/* redirects are followed by http_redirect */
	http_setopt(easy, &fault, CURLOPT_FOLLOWLOCATION, 0L);
	http_setopt(easy, &fault, CURLOPT_WRITEFUNCTION, chime_http_write);
	http_setopt(easy, &fault, CURLOPT_WRITEDATA, t);
	http_setopt(easy, &fault, CURLOPT_HEADERFUNCTION, chime_http_header);
	http_setopt(easy, &fault, CURLOPT_HEADERDATA, t);
	http_setopt(easy, &fault, CURLOPT_OPENSOCKETFUNCTION, chime_http_open_socket);
	http_setopt(easy, &fault, CURLOPT_OPENSOCKETDATA, t);
	http_setopt(easy, &fault, CURLOPT_ERRORBUFFER, t->error);
	http_setopt(easy, &fault, CURLOPT_USERAGENT, "pg_chime");
	http_setopt(easy, &fault, CURLOPT_HTTPHEADER, t->headers);
	http_setopt(easy, &fault, CURLOPT_CUSTOMREQUEST, req->method);
	if (strcmp(req->method, "HEAD") == 0)
		http_setopt(easy, &fault, CURLOPT_NOBODY, 1L);
	if (req->body)
		http_setopt(easy, &fault, CURLOPT_COPYPOSTFIELDS, req->body);
	t->started = GetCurrentTimestamp();
	if (fault.call == NULL && http_hop(t, &fault))
		return true;
	message = chime_http_fault_message("could not start a transfer", &fault);
	elog(LOG, "pg_chime: %s", message);
	*error = chime_http_scrub(t, message, strlen(message), NULL);
	http_free(t);
	return false;
}

/*
 * The response of this hop was a redirect to 'location' (status 'status'):
 * start the next hop (NULL), or the result refusing it.  See the file's
 * header for the rules.
 */
static ChimeHttpResult *
http_redirect(HttpTransfer *t, long status, const char *location)
{
	char     *url;
	char     *scheme;
	char     *origin;
	HttpFault fault = {0};
	bool      same_origin;

	if (t->redirects >= chime_http_max_redirects)
		return chime_http_refusal(t, psprintf("refused: more than %d redirects (cron.http_max_redirects)", chime_http_max_redirects));
	if (!chime_http_parse_url(location, &url, &scheme, &origin))
		return chime_http_refusal(t, "refused: a redirect to an invalid URL");
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
		return chime_http_refusal(t, "refused: only http and https are allowed (a redirect went elsewhere)");
	if (origin == NULL)
		return chime_http_refusal(t, "refused: a redirect to an invalid URL");
	same_origin = t->origin != NULL && strcmp(origin, t->origin) == 0;
	if (!same_origin && t->carries_secret)
		return chime_http_refusal(t, psprintf("refused: redirect to another origin (%s) from a request that carries a secret", origin));

	if ((status == 303 && strcmp(t->method, "HEAD") != 0) ||
		((status == 301 || status == 302) && strcmp(t->method, "POST") == 0))
	{
		http_setopt(t->easy, &fault, CURLOPT_HTTPGET, 1L);
		http_setopt(t->easy, &fault, CURLOPT_CUSTOMREQUEST, (char *) NULL);
		strlcpy(t->method, "GET", sizeof(t->method));
	}
	if (!same_origin)
	{
		/* what libcurl would not send to another origin either */
		struct curl_slist *kept = NULL;

		for (struct curl_slist *h = t->headers; h && fault.call == NULL; h = h->next)
		{
			if (pg_strncasecmp(h->data, "authorization:", 14) == 0 ||
				pg_strncasecmp(h->data, "cookie:", 7) == 0)
				continue;
			(void) http_slist_append(&kept, h->data, &fault);
		}
		http_setopt(t->easy, &fault, CURLOPT_HTTPHEADER, kept);
		if (fault.call != NULL)
			curl_slist_free_all(kept);
		else
		{
			curl_slist_free_all(t->headers);
			t->headers = kept;
		}
	}
	http_setopt(t->easy, &fault, CURLOPT_URL, url);
	if (fault.call == NULL)
	{
		char *old = t->url;

		t->url = MemoryContextStrdup(TopMemoryContext, url);
		pfree(old);
		t->redirects++;
		resetStringInfo(&t->body);
		t->bytes = 0;
		t->reason[0] = '\0';
		t->retry_after_s = 0;
		if (http_time_left(t) <= 0)
			return chime_http_result(t, CURLE_OPERATION_TIMEDOUT);
		if (http_hop(t, &fault))
			return NULL;
	}
	return chime_http_failed(t, "could not follow a redirect", &fault);
}

/*
 * The request of a hop ended: the next hop started (NULL) or the result.
 * A response whose status or Location cannot be read fails the transfer.
 */
static ChimeHttpResult *
http_answered(HttpTransfer *t, CURLcode code)
{
	long      status = 0;
	char     *location = NULL;
	HttpFault fault = {0};

	http_remove(t->easy, "transfer");
	t->easy_added = false;
	if (code == CURLE_OK && !t->too_big && chime_http_max_redirects > 0)
	{
		http_getinfo(t->easy, &fault, CURLINFO_RESPONSE_CODE, &status);
		if (fault.call == NULL &&
			status >= 300 && status < 400 && status != 304 && status != 305)
		{
			http_getinfo(t->easy, &fault, CURLINFO_REDIRECT_URL, &location);
			if (fault.call == NULL && location != NULL)
				return http_redirect(t, status, location);
		}
		if (fault.call != NULL)
			return chime_http_failed(t, "could not read the response", &fault);
	}
	return chime_http_result(t, code);
}

/* The probe of a hop ended: the request sent (NULL) or the result. */
static ChimeHttpResult *
http_probed(HttpTransfer *t, CURLcode code)
{
	HttpFault fault = {0};

	http_remove(t->probe, "probe");
	curl_easy_cleanup(t->probe);
	t->probe = NULL;
	if (t->refused[0] != '\0')
		return chime_http_refusal(t, t->refused);
	if (t->allowed == 0)
		return chime_http_result(t, code == CURLE_OK ? CURLE_COULDNT_RESOLVE_HOST : code);
	t->error[0] = '\0';
	if (http_time_left(t) <= 0)
		return chime_http_result(t, CURLE_OPERATION_TIMEDOUT);
	if (http_send(t, Max(http_time_left(t), 1), &fault))
		return NULL;
	return chime_http_failed(t, "could not send the request", &fault);
}

/*
 * The transfer an easy handle (request or probe) belongs to: its
 * CURLOPT_PRIVATE, or, if libcurl cannot give it, the one whose handle it
 * is; NULL if none is.
 */
static HttpTransfer *
http_transfer_of(CURL *easy)
{
	HttpTransfer *t = NULL;
	HttpFault     fault = {0};
	dlist_iter    iter;

	http_getinfo(easy, &fault, CURLINFO_PRIVATE, (char **) &t);
	if (fault.call == NULL && t != NULL)
		return t;
	dlist_foreach(iter, &http_transfers)
	{
		t = dlist_container(HttpTransfer, node, iter.cur);
		if (t->easy == easy || t->probe == easy)
			return t;
	}
	return NULL;
}

/*
 * Let libcurl act on socket 's' (flags: what epoll saw), or on its timers
 * (CURL_SOCKET_TIMEOUT).  A failure is the multi handle's, not one
 * transfer's: a WARNING, and libcurl is asked again, for a socket when it
 * is ready again, for the timers in a second unless libcurl set a timer
 * of its own meanwhile.  A socket libcurl does not know leaves the epoll
 * set, so that it does not wake the scheduler again.
 */
static void
http_socket_action(curl_socket_t s, int flags)
{
	int       still;
	CURLMcode code = curl_multi_socket_action(http_multi, s, flags, &still);

	if (code == CURLM_OK)
		return;
	elog(WARNING, "pg_chime: libcurl could not act on %s: %s",
		 s == CURL_SOCKET_TIMEOUT ? "its timers" : "a socket", curl_multi_strerror(code));
	if (s != CURL_SOCKET_TIMEOUT && code == CURLM_BAD_SOCKET)
		(void) epoll_ctl(http_epoll, EPOLL_CTL_DEL, s, NULL);
	if (s == CURL_SOCKET_TIMEOUT && http_timer_ms < 0)
	{
		http_timer_ms = 1000;
		http_timer_set = GetCurrentTimestamp();
	}
}

/*
 * Let libcurl act on the sockets that are ready and on its timers, then
 * take the transfers whose hop ended: start their next step (the request
 * after its probe, the next hop of a redirect) or return their result.
 */
List *
chime_http_work(void)
{
	struct epoll_event events[64];
	int                n;
	CURLMsg           *msg;
	int                left;
	List              *results = NIL;

	if (http_multi == NULL)
		return NIL;
	while ((n = epoll_wait(http_epoll, events, lengthof(events), 0)) > 0)
	{
		for (int i = 0; i < n; i++)
		{
			int flags = 0;

			if (events[i].events & EPOLLIN)
				flags |= CURL_CSELECT_IN;
			if (events[i].events & EPOLLOUT)
				flags |= CURL_CSELECT_OUT;
			if (events[i].events & (EPOLLERR | EPOLLHUP))
				flags |= CURL_CSELECT_ERR;
			http_socket_action(events[i].data.fd, flags);
		}
		if (n < (int) lengthof(events))
			break;
	}
	if (http_timer_ms >= 0 && chime_http_timeout() == 0)
	{
		http_timer_ms = -1;
		http_socket_action(CURL_SOCKET_TIMEOUT, 0);
	}

	while ((msg = curl_multi_info_read(http_multi, &left)) != NULL)
	{
		HttpTransfer    *t;
		CURL            *easy = msg->easy_handle;
		CURLcode         code = msg->data.result;
		ChimeHttpResult *r;

		if (msg->msg != CURLMSG_DONE)
			continue;
		t = http_transfer_of(easy);
		if (t == NULL)
		{
			/* none of ours: out of the multi handle, so it is not seen again */
			elog(WARNING, "pg_chime: libcurl ended a transfer that pg_chime does not know");
			http_remove(easy, "transfer");
			continue;
		}
		r = easy == t->probe ? http_probed(t, code) : http_answered(t, code);
		if (r != NULL)
		{
			results = lappend(results, r);
			http_free(t);
		}
	}
	return results;
}

/*
 * Stop and forget the transfers whose owner 'match' accepts, wherever they
 * are (probe, request, between hops); their results, as chime_http_work's.
 */
List *
chime_http_cancel(bool (*match)(void *owner, void *arg), void *arg, const char *message)
{
	dlist_mutable_iter iter;
	List              *results = NIL;

	dlist_foreach_modify(iter, &http_transfers)
	{
		HttpTransfer    *t = dlist_container(HttpTransfer, node, iter.cur);
		ChimeHttpResult *r;

		if (!match(t->owner, arg))
			continue;
		r = palloc0(sizeof(ChimeHttpResult));
		r->owner = t->owner;
		r->message = pstrdup(message);
		results = lappend(results, r);
		http_free(t);
	}
	return results;
}
