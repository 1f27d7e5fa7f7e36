/*-------------------------------------------------------------------------
 *
 * http.c
 *	  HTTP jobs: one libcurl multi handle, driven from the scheduler's wait
 *	  loop.
 *
 * libcurl tells us which sockets it waits on (socket callback) and when it
 * wants to be called back (timer callback).  The sockets go into an epoll
 * set of our own, whose descriptor the scheduler waits on beside its latch
 * and postmaster death, so no transfer, however slow, delays anything
 * else.  Connections are kept alive and reused between runs.
 *
 * Safety: only http and https, also after redirects; at most
 * cron.http_max_redirects of them; the body is counted in the write
 * callback and the transfer stopped past cron.http_max_response_size; every
 * address is checked after DNS resolution, before connecting, against
 * cron.http_deny_networks and cron.http_allow_networks.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "lib/stringinfo.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "http.h"

/* Settings */
int			chime_http_max_in_flight = 1000;
static int	http_timeout_ms = 30000;
static int	http_max_redirects = 5;
static int	http_max_response_size = 1024 * 1024;
static int	http_max_logged_body = 8192;
static char *http_deny_text = NULL;
static char *http_allow_text = NULL;

/* A network of cron.http_deny_networks or cron.http_allow_networks */
typedef struct HttpNet
{
	int			family;			/* AF_INET or AF_INET6 */
	unsigned char addr[16];
	int			bits;
} HttpNet;

typedef struct HttpNets
{
	int			n;
	HttpNet		net[FLEXIBLE_ARRAY_MEMBER];
} HttpNets;

static HttpNets *http_deny = NULL;
static HttpNets *http_allow = NULL;

/* One transfer */
typedef struct HttpTransfer
{
	void	   *owner;
	CURL	   *easy;
	struct curl_slist *headers;
	StringInfoData body;		/* the first http_max_logged_body bytes */
	int64		bytes;			/* all of them */
	bool		too_big;
	char		refused[160];	/* why the address was refused ("" if it was not) */
	char		reason[64];		/* the reason phrase of the last status line */
	int64		retry_after_s;
	TimestampTz started;
	int			timeout_ms;
	char		error[CURL_ERROR_SIZE];
} HttpTransfer;

static CURLM *http_multi = NULL;
static int	http_epoll = -1;
static long http_timer_ms = -1;	/* libcurl's wish, from when it was set */
static TimestampTz http_timer_set = 0;
static int	http_running = 0;

/* ---- settings ------------------------------------------------------------ */

/* Parse "a.b.c.d/n, x::/n" into a list of networks; NULL if invalid. */
static HttpNets *
http_parse_nets(const char *text, char **bad)
{
	char	   *copy = pstrdup(text ? text : "");
	char	   *tok;
	char	   *save = NULL;
	HttpNets   *nets = palloc0(offsetof(HttpNets, net) + sizeof(HttpNet) * (strlen(copy) / 2 + 1));

	for (tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save))
	{
		HttpNet    *net = &nets->net[nets->n];
		char	   *slash = strchr(tok, '/');
		int			maxbits;

		if (slash)
			*slash = '\0';
		if (inet_pton(AF_INET, tok, net->addr) == 1)
		{
			net->family = AF_INET;
			maxbits = 32;
		}
		else if (inet_pton(AF_INET6, tok, net->addr) == 1)
		{
			net->family = AF_INET6;
			maxbits = 128;
		}
		else
		{
			*bad = tok;
			return NULL;
		}
		net->bits = maxbits;
		if (slash)
		{
			char	   *end;
			long		bits = strtol(slash + 1, &end, 10);

			if (*end != '\0' || end == slash + 1 || bits < 0 || bits > maxbits)
			{
				*slash = '/';
				*bad = tok;
				return NULL;
			}
			net->bits = (int) bits;
		}
		nets->n++;
	}
	return nets;
}

static bool
http_check_nets(char **newval, void **extra, GucSource source)
{
	char	   *bad = NULL;
	HttpNets   *nets = http_parse_nets(*newval, &bad);
	HttpNets   *copy;
	Size		size;

	if (nets == NULL)
	{
		GUC_check_errdetail("\"%s\" is not an address or network.", bad);
		GUC_check_errhint("List networks as addresses with a prefix length, separated by commas, e.g. '169.254.0.0/16, fe80::/10'.");
		return false;
	}
	size = offsetof(HttpNets, net) + sizeof(HttpNet) * nets->n;
	copy = malloc(size);
	if (copy == NULL)
		return false;
	memcpy(copy, nets, size);
	*extra = copy;
	return true;
}

static void
http_assign_deny(const char *newval, void *extra)
{
	http_deny = extra;
}

static void
http_assign_allow(const char *newval, void *extra)
{
	http_allow = extra;
}

void
chime_http_define_settings(void)
{
	DefineCustomIntVariable("cron.http_max_in_flight", "Most HTTP transfers at the same time.",
							NULL, &chime_http_max_in_flight, 1000, 1, 100000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("cron.http_timeout", "Timeout of an HTTP job without its own.",
							NULL, &http_timeout_ms, 30000, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("cron.http_max_redirects", "Most redirects an HTTP job follows.",
							NULL, &http_max_redirects, 5, 0, 100,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("cron.http_max_response_size", "Largest response body an HTTP job accepts.",
							NULL, &http_max_response_size, 1024 * 1024, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomIntVariable("cron.http_max_logged_body", "How much of a response body is kept in cron.job_run_details.",
							NULL, &http_max_logged_body, 8192, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomStringVariable("cron.http_deny_networks", "Networks HTTP jobs may not connect to.",
							   NULL, &http_deny_text, "169.254.0.0/16, fe80::/10",
							   PGC_SIGHUP, 0, http_check_nets, http_assign_deny, NULL);
	DefineCustomStringVariable("cron.http_allow_networks", "When set, the only networks HTTP jobs may connect to.",
							   NULL, &http_allow_text, "",
							   PGC_SIGHUP, 0, http_check_nets, http_assign_allow, NULL);
}

/* ---- address checks ------------------------------------------------------ */

static bool
http_in_net(const HttpNet *net, int family, const unsigned char *addr)
{
	int			full = net->bits / 8;
	int			rest = net->bits % 8;

	if (net->family != family)
		return false;
	if (memcmp(net->addr, addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((net->addr[full] ^ addr[full]) & (0xFF << (8 - rest))) == 0;
}

static bool
http_in_nets(const HttpNets *nets, int family, const unsigned char *addr)
{
	for (int i = 0; nets && i < nets->n; i++)
		if (http_in_net(&nets->net[i], family, addr))
			return true;
	return false;
}

/* libcurl's socket opening: refuse addresses outside the allowed networks */
static curl_socket_t
http_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
	HttpTransfer *t = clientp;
	int			family = address->family;
	unsigned char addr[16];
	char		text[INET6_ADDRSTRLEN] = "?";

	if (family == AF_INET)
		memcpy(addr, &((struct sockaddr_in *) &address->addr)->sin_addr, 4);
	else if (family == AF_INET6)
	{
		memcpy(addr, &((struct sockaddr_in6 *) &address->addr)->sin6_addr, 16);
		/* an IPv4-mapped address is its IPv4 address */
		if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *) addr))
		{
			memmove(addr, addr + 12, 4);
			family = AF_INET;
		}
	}
	else
	{
		snprintf(t->refused, sizeof(t->refused), "refused: address family %d", family);
		return CURL_SOCKET_BAD;
	}
	inet_ntop(family, addr, text, sizeof(text));
	if (http_in_nets(http_deny, family, addr))
	{
		snprintf(t->refused, sizeof(t->refused), "refused: address %s is in cron.http_deny_networks", text);
		return CURL_SOCKET_BAD;
	}
	if (http_allow && http_allow->n > 0 && !http_in_nets(http_allow, family, addr))
	{
		snprintf(t->refused, sizeof(t->refused), "refused: address %s is not in cron.http_allow_networks", text);
		return CURL_SOCKET_BAD;
	}
	return socket(address->family, address->socktype, address->protocol);
}

/* ---- callbacks ----------------------------------------------------------- */

static size_t
http_write(char *data, size_t size, size_t nmemb, void *userp)
{
	HttpTransfer *t = userp;
	size_t		n = size * nmemb;

	t->bytes += n;
	if (t->bytes > http_max_response_size)
	{
		t->too_big = true;
		return 0;				/* libcurl stops the transfer */
	}
	if (t->body.len < http_max_logged_body)
		appendBinaryStringInfo(&t->body, data, Min((int) n, http_max_logged_body - t->body.len));
	return n;
}

static size_t
http_header(char *data, size_t size, size_t nmemb, void *userp)
{
	HttpTransfer *t = userp;
	size_t		n = size * nmemb;

	if (n > 5 && strncmp(data, "HTTP/", 5) == 0)
	{
		/* a new response (after a redirect or a 100): "HTTP/1.1 200 OK" */
		const char *sp = memchr(data, ' ', n);
		const char *reason = sp ? memchr(sp + 1, ' ', n - (sp + 1 - data)) : NULL;
		size_t		len = 0;

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
		char		value[64];
		long		secs;
		char	   *end;

		snprintf(value, sizeof(value), "%.*s", (int) (n - 12), data + 12);
		secs = strtol(value, &end, 10);
		if (end != value && secs >= 0)
			t->retry_after_s = secs;
		else
		{
			time_t		when = curl_getdate(value, NULL);

			if (when > 0)
				t->retry_after_s = Max(0, when - time(NULL));
		}
	}
	return n;
}

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

static int
http_timer(CURLM *multi, long timeout_ms, void *userp)
{
	http_timer_ms = timeout_ms;
	http_timer_set = GetCurrentTimestamp();
	return 0;
}

/* ---- the engine ---------------------------------------------------------- */

int
chime_http_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		elog(ERROR, "pg_chime: could not initialise libcurl");
	http_epoll = epoll_create1(EPOLL_CLOEXEC);
	if (http_epoll < 0)
		elog(ERROR, "pg_chime: could not create an epoll set: %m");
	http_multi = curl_multi_init();
	curl_multi_setopt(http_multi, CURLMOPT_SOCKETFUNCTION, http_socket);
	curl_multi_setopt(http_multi, CURLMOPT_TIMERFUNCTION, http_timer);
	curl_multi_setopt(http_multi, CURLMOPT_MAXCONNECTS, (long) Max(chime_http_max_in_flight, 16));
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
	long		left;

	if (http_timer_ms < 0)
		return -1;
	left = http_timer_ms - (long) ((GetCurrentTimestamp() - http_timer_set) / 1000);
	return Max(left, 0);
}

bool
chime_http_start(void *owner, const ChimeHttpRequest *req, char **error)
{
	HttpTransfer *t = MemoryContextAllocZero(TopMemoryContext, sizeof(HttpTransfer));
	CURL	   *easy = curl_easy_init();
	ListCell   *lc;
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	if (easy == NULL)
	{
		*error = pstrdup("could not start a transfer");
		pfree(t);
		MemoryContextSwitchTo(old);
		return false;
	}
	t->owner = owner;
	t->easy = easy;
	initStringInfo(&t->body);
	t->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : http_timeout_ms;
	foreach(lc, req->headers)
		t->headers = curl_slist_append(t->headers, lfirst(lc));
	MemoryContextSwitchTo(old);

	curl_easy_setopt(easy, CURLOPT_URL, req->url);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, http_max_redirects > 0 ? 1L : 0L);
	curl_easy_setopt(easy, CURLOPT_MAXREDIRS, (long) http_max_redirects);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) t->timeout_ms);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, http_write);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, http_header);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, t);
	curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, http_open_socket);
	curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, t);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->error);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "pg_chime");
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t->headers);
	curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, req->method);
	if (strcmp(req->method, "HEAD") == 0)
		curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
	if (req->body)
		curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, req->body);
	t->started = GetCurrentTimestamp();
	if (curl_multi_add_handle(http_multi, easy) != CURLM_OK)
	{
		*error = pstrdup("could not start a transfer");
		curl_easy_cleanup(easy);
		curl_slist_free_all(t->headers);
		pfree(t->body.data);
		pfree(t);
		return false;
	}
	http_running++;
	return true;
}

/* The result of a finished transfer (allocated in the current context) */
static ChimeHttpResult *
http_result(HttpTransfer *t, CURLcode code)
{
	ChimeHttpResult *r = palloc0(sizeof(ChimeHttpResult));
	long		status = 0;
	long		ms = (long) ((GetCurrentTimestamp() - t->started) / 1000);

	r->owner = t->owner;
	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
	if (t->too_big)
	{
		r->message = psprintf("refused: response larger than cron.http_max_response_size (%d bytes)",
							  http_max_response_size);
		r->status = (int) status;
	}
	else if (t->refused[0] != '\0')
		r->message = pstrdup(t->refused);
	else if (code == CURLE_OPERATION_TIMEDOUT)
	{
		r->message = psprintf("timeout after %d ms", t->timeout_ms);
		r->retry = true;
	}
	else if (code == CURLE_TOO_MANY_REDIRECTS)
		r->message = psprintf("refused: more than %d redirects (cron.http_max_redirects)", http_max_redirects);
	else if (code == CURLE_UNSUPPORTED_PROTOCOL)
		r->message = pstrdup("refused: only http and https are allowed (a redirect went elsewhere)");
	else if (code == CURLE_COULDNT_CONNECT)
	{
		r->message = pstrdup("connection refused");
		r->retry = true;
	}
	else if (code != CURLE_OK)
	{
		r->message = psprintf("%s", t->error[0] ? t->error : curl_easy_strerror(code));
		r->retry = true;
	}
	else
	{
		r->status = (int) status;
		r->ok = status >= 200 && status < 300;
		r->retry = status == 429 || status >= 500;
		if ((status == 429 || status == 503) && t->retry_after_s > 0)
			r->retry_after_us = t->retry_after_s * USECS_PER_SEC;
		r->message = psprintf("%ld%s%s, " INT64_FORMAT " bytes, %ld ms", status,
							  t->reason[0] ? " " : "", t->reason, t->bytes, ms);
	}
	if (t->body.len > 0 || r->status > 0)
		r->body = pnstrdup(t->body.data, t->body.len);
	return r;
}

List *
chime_http_work(void)
{
	struct epoll_event events[64];
	int			n;
	int			still;
	CURLMsg    *msg;
	int			left;
	List	   *results = NIL;

	if (http_multi == NULL)
		return NIL;
	while ((n = epoll_wait(http_epoll, events, lengthof(events), 0)) > 0)
	{
		for (int i = 0; i < n; i++)
		{
			int			flags = 0;

			if (events[i].events & EPOLLIN)
				flags |= CURL_CSELECT_IN;
			if (events[i].events & EPOLLOUT)
				flags |= CURL_CSELECT_OUT;
			if (events[i].events & (EPOLLERR | EPOLLHUP))
				flags |= CURL_CSELECT_ERR;
			curl_multi_socket_action(http_multi, events[i].data.fd, flags, &still);
		}
		if (n < (int) lengthof(events))
			break;
	}
	if (http_timer_ms >= 0 && chime_http_timeout() == 0)
	{
		http_timer_ms = -1;
		curl_multi_socket_action(http_multi, CURL_SOCKET_TIMEOUT, 0, &still);
	}

	while ((msg = curl_multi_info_read(http_multi, &left)) != NULL)
	{
		HttpTransfer *t;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &t);
		results = lappend(results, http_result(t, msg->data.result));
		curl_multi_remove_handle(http_multi, t->easy);
		curl_easy_cleanup(t->easy);
		curl_slist_free_all(t->headers);
		pfree(t->body.data);
		pfree(t);
		http_running--;
	}
	return results;
}
