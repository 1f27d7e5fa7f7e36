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
 * callback and the transfer stopped past cron.http_max_response_size.
 *
 * Addresses: every address a job's URL or a redirect leads to is checked
 * after DNS resolution, before connecting: the unspecified addresses
 * (0.0.0.0/8 and ::, which on Linux reach this host) are always refused,
 * then cron.http_deny_networks, then cron.http_allow_networks when set.
 * Without a proxy the check is libcurl's socket opening callback, so it
 * sees exactly the addresses libcurl connects to.
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
 * Secrets: no message or recorded body shows an expanded secret value;
 * each occurrence is replaced by {{secret.NAME}} (see http_scrub).
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

#include "lib/ilist.h"
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
static char *http_proxy = NULL;

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

/*
 * One transfer: its request and, hop after hop (redirects), what the
 * callbacks saw.  Allocated in TopMemoryContext, freed by http_free.
 */
typedef struct HttpTransfer
{
	dlist_node	node;			/* in http_transfers */
	void	   *owner;
	CURL	   *easy;			/* the request */
	bool		easy_added;		/* in http_multi */
	CURL	   *probe;			/* resolving this hop's host before the proxy
								 * is asked (NULL: none going) */
	bool		via_proxy;		/* cron.http_proxy was set when it started */
	struct curl_slist *headers;
	char	   *url;			/* this hop's */
	char	   *origin;			/* the first URL's "scheme://host:port" */
	char		method[16];		/* this hop's */
	int			redirects;		/* followed so far */
	bool		carries_secret; /* the request has a {{secret.*}} */
	int			nsecrets;		/* the non-empty values, longest first */
	ChimeHttpSecret *secrets;
	StringInfoData body;		/* the first http_max_logged_body bytes */
	int64		bytes;			/* all of them */
	bool		too_big;
	int			allowed;		/* addresses the probe let through */
	char		refused[160];	/* why an address was refused ("" if none was) */
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
static dlist_head http_transfers = DLIST_STATIC_INIT(http_transfers);

/*
 * curl_easy_setopt, keeping in *failed the name of the first option libcurl
 * refused: the options of a handle are set in a row and checked once.
 */
#define http_setopt(easy, failed, option, value) \
	do { \
		if (*(failed) == NULL && curl_easy_setopt((easy), (option), (value)) != CURLE_OK) \
			*(failed) = #option; \
	} while (0)

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

/*
 * cron.http_proxy is empty or scheme://[user:password@]host[:port][/], the
 * scheme one libcurl knows for proxies.  (It may hold a password: only
 * superusers can read it.)
 */
static bool
http_check_proxy(char **newval, void **extra, GucSource source)
{
	static const char *const schemes[] = {"http", "https", "socks4", "socks4a", "socks5", "socks5h"};
	const char *value = *newval ? *newval : "";
	const char *sep = strstr(value, "://");
	bool		known = false;
	const char *p;

	if (value[0] == '\0')
		return true;
	for (int i = 0; sep && i < lengthof(schemes); i++)
		if ((size_t) (sep - value) == strlen(schemes[i]) &&
			pg_strncasecmp(value, schemes[i], sep - value) == 0)
			known = true;
	if (known)
	{
		for (p = sep + 3; *p && *p != '/'; p++)
			if ((unsigned char) *p <= ' ' || *p == 0x7f)
				known = false;
		if (p == sep + 3 || (*p == '/' && p[1] != '\0'))
			known = false;
	}
	if (!known)
	{
		GUC_check_errdetail("cron.http_proxy is not a proxy URL.");
		GUC_check_errhint("Give the proxy as scheme://host:port, the scheme one of http, https, socks4, socks4a, socks5 or socks5h, e.g. 'http://proxy.example.com:3128'; empty for none.");
		return false;
	}
	return true;
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
	DefineCustomStringVariable("cron.http_proxy", "The proxy HTTP jobs go through; empty for none.",
							   "Proxy settings in the server's environment are ignored.",
							   &http_proxy, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, http_check_proxy, NULL, NULL);
}

/* ---- requests ------------------------------------------------------------ */

/*
 * A zeroed request with its secrets copied in, in one allocation (see
 * http.h): the scheduler frees requests with pfree and knows nothing of
 * what they carry.
 */
ChimeHttpRequest *
chime_http_request_new(List *secrets)
{
	int			n = list_length(secrets);
	Size		size = offsetof(ChimeHttpRequest, secrets) + sizeof(ChimeHttpSecret) * n;
	ChimeHttpRequest *req;
	char	   *p;
	ListCell   *lc;
	int			i = 0;

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
http_longest_first(const void *a, const void *b)
{
	size_t		la = strlen(((const ChimeHttpSecret *) a)->value);
	size_t		lb = strlen(((const ChimeHttpSecret *) b)->value);

	return la > lb ? -1 : la < lb ? 1 : 0;
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
static char *
http_scrub(const HttpTransfer *t, const char *text, int len, int *outlen)
{
	StringInfoData out;
	int			i = 0;

	initStringInfo(&out);
	while (i < len)
	{
		const ChimeHttpSecret *hit = NULL;

		for (int k = 0; k < t->nsecrets && hit == NULL; k++)
		{
			int			vlen = (int) strlen(t->secrets[k].value);

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

/*
 * Parse 'url' as libcurl would follow it: the URL to use (encoded) in
 * *normal, its scheme in *scheme (lower case) and, when it has a host, its
 * origin "scheme://host:port" (lower case, default port filled in) in
 * *origin, else NULL there; all in the current memory context.  False if
 * it does not parse at all.
 */
static bool
http_parse_url(const char *url, char **normal, char **scheme, char **origin)
{
	CURLU	   *u = curl_url();
	char	   *s = NULL;
	char	   *full = NULL;
	char	   *host = NULL;
	char	   *port = NULL;
	bool		ok = false;

	*origin = NULL;
	if (u == NULL)
		return false;
	if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME | CURLU_URLENCODE) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_SCHEME, &s, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_URL, &full, 0) == CURLUE_OK)
	{
		ok = true;
		*normal = pstrdup(full);
		*scheme = pstrdup(s);
		for (char *c = *scheme; *c; c++)
			*c = pg_ascii_tolower((unsigned char) *c);
		if (curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host[0] != '\0' &&
			curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK)
		{
			*origin = psprintf("%s://%s:%s", *scheme, host, port);
			for (char *c = *origin; *c; c++)
				*c = pg_ascii_tolower((unsigned char) *c);
		}
	}
	curl_free(s);
	curl_free(full);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return ok;
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

/*
 * May a job connect to 'address'?  If not, why goes to t->refused (the
 * first reason of the hop is kept).  The unspecified addresses 0.0.0.0/8
 * and :: are refused whatever the lists say: connecting to them reaches
 * this host.  Then cron.http_deny_networks, then cron.http_allow_networks
 * when it is set.  An IPv4-mapped IPv6 address is checked as its IPv4
 * address.
 */
static bool
http_address_ok(HttpTransfer *t, const struct curl_sockaddr *address)
{
	static const unsigned char zero[16] = {0};
	int			family = address->family;
	unsigned char addr[16];
	char		text[INET6_ADDRSTRLEN] = "?";
	char		why[sizeof(t->refused)];

	if (family == AF_INET)
		memcpy(addr, &((const struct sockaddr_in *) &address->addr)->sin_addr, 4);
	else if (family == AF_INET6)
	{
		memcpy(addr, &((const struct sockaddr_in6 *) &address->addr)->sin6_addr, 16);
		if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *) addr))
		{
			memmove(addr, addr + 12, 4);
			family = AF_INET;
		}
	}
	else
	{
		snprintf(why, sizeof(why), "refused: address family %d", family);
		goto refused;
	}
	inet_ntop(family, addr, text, sizeof(text));
	if ((family == AF_INET && addr[0] == 0) ||
		(family == AF_INET6 && memcmp(addr, zero, 16) == 0))
	{
		snprintf(why, sizeof(why), "refused: address %s is unspecified (0.0.0.0/8 and :: are always refused)", text);
		goto refused;
	}
	if (http_in_nets(http_deny, family, addr))
	{
		snprintf(why, sizeof(why), "refused: address %s is in cron.http_deny_networks", text);
		goto refused;
	}
	if (http_allow && http_allow->n > 0 && !http_in_nets(http_allow, family, addr))
	{
		snprintf(why, sizeof(why), "refused: address %s is not in cron.http_allow_networks", text);
		goto refused;
	}
	return true;

refused:
	if (t->refused[0] == '\0')
		strlcpy(t->refused, why, sizeof(t->refused));
	return false;
}

/*
 * libcurl's socket opening for a request: refuse addresses a job may not
 * reach.  Through a proxy every socket goes to the proxy, which a
 * superuser chose: the target was checked by the probe.
 */
static curl_socket_t
http_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
	HttpTransfer *t = clientp;

	if (!t->via_proxy && !http_address_ok(t, address))
		return CURL_SOCKET_BAD;
	return socket(address->family, address->socktype, address->protocol);
}

/*
 * libcurl's socket opening for a probe: check each address the host has,
 * count those allowed, and open none (libcurl then offers the next one, of
 * both families, until none is left).
 */
static curl_socket_t
http_probe_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
	HttpTransfer *t = clientp;

	if (http_address_ok(t, address))
		t->allowed++;
	return CURL_SOCKET_BAD;
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
	if (http_multi == NULL ||
		curl_multi_setopt(http_multi, CURLMOPT_SOCKETFUNCTION, http_socket) != CURLM_OK ||
		curl_multi_setopt(http_multi, CURLMOPT_TIMERFUNCTION, http_timer) != CURLM_OK ||
		curl_multi_setopt(http_multi, CURLMOPT_MAXCONNECTS, (long) Max(chime_http_max_in_flight, 16)) != CURLM_OK)
		elog(ERROR, "pg_chime: could not set up a libcurl multi handle");
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

/* Milliseconds left of the transfer's timeout */
static long
http_time_left(const HttpTransfer *t)
{
	return t->timeout_ms - (long) ((GetCurrentTimestamp() - t->started) / 1000);
}

/* Forget a transfer: out of the multi handle, its handles and memory freed. */
static void
http_free(HttpTransfer *t)
{
	if (t->probe)
	{
		if (curl_multi_remove_handle(http_multi, t->probe) != CURLM_OK)
			elog(WARNING, "pg_chime: libcurl could not remove a probe");
		curl_easy_cleanup(t->probe);
	}
	if (t->easy_added && curl_multi_remove_handle(http_multi, t->easy) != CURLM_OK)
		elog(WARNING, "pg_chime: libcurl could not remove a transfer");
	curl_easy_cleanup(t->easy);
	curl_slist_free_all(t->headers);
	for (int i = 0; i < t->nsecrets; i++)
	{
		pfree(t->secrets[i].value);
		pfree(t->secrets[i].name);
	}
	if (t->secrets)
		pfree(t->secrets);
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
 * the failing call in *failed, if it cannot start.
 */
static bool
http_start_probe(HttpTransfer *t, long left_ms, const char **failed)
{
	CURL	   *probe = curl_easy_init();

	if (probe == NULL)
	{
		*failed = "curl_easy_init";
		return false;
	}
	t->allowed = 0;
	http_setopt(probe, failed, CURLOPT_URL, t->url);
	http_setopt(probe, failed, CURLOPT_PRIVATE, t);
	http_setopt(probe, failed, CURLOPT_NOSIGNAL, 1L);
	http_setopt(probe, failed, CURLOPT_PROTOCOLS_STR, "http,https");
	http_setopt(probe, failed, CURLOPT_PROXY, "");
	http_setopt(probe, failed, CURLOPT_CONNECT_ONLY, 1L);
	http_setopt(probe, failed, CURLOPT_FRESH_CONNECT, 1L);
	http_setopt(probe, failed, CURLOPT_FORBID_REUSE, 1L);
	http_setopt(probe, failed, CURLOPT_OPENSOCKETFUNCTION, http_probe_socket);
	http_setopt(probe, failed, CURLOPT_OPENSOCKETDATA, t);
	http_setopt(probe, failed, CURLOPT_ERRORBUFFER, t->error);
	http_setopt(probe, failed, CURLOPT_TIMEOUT_MS, left_ms);
	if (*failed == NULL && curl_multi_add_handle(http_multi, probe) != CURLM_OK)
		*failed = "curl_multi_add_handle";
	if (*failed)
	{
		curl_easy_cleanup(probe);
		return false;
	}
	t->probe = probe;
	return true;
}

/* Send this hop's request: false, with the failing call in *failed, if it cannot start. */
static bool
http_send(HttpTransfer *t, long left_ms, const char **failed)
{
	http_setopt(t->easy, failed, CURLOPT_TIMEOUT_MS, left_ms);
	if (*failed == NULL && curl_multi_add_handle(http_multi, t->easy) != CURLM_OK)
		*failed = "curl_multi_add_handle";
	if (*failed)
		return false;
	t->easy_added = true;
	return true;
}

/*
 * Start this hop: through a proxy the probe of its host, else its request.
 * False, with the failing call in *failed, if it cannot start.
 */
static bool
http_hop(HttpTransfer *t, const char **failed)
{
	long		left = Max(http_time_left(t), 1);

	t->refused[0] = '\0';
	t->error[0] = '\0';
	if (t->via_proxy)
		return http_start_probe(t, left, failed);
	return http_send(t, left, failed);
}

/*
 * Start a transfer for 'req' (which the caller may free on return: what is
 * needed is copied), owned by 'owner'.  False, with *error, if it cannot
 * start.
 */
bool
chime_http_start(void *owner, const ChimeHttpRequest *req, char **error)
{
	HttpTransfer *t;
	CURL	   *easy = curl_easy_init();
	const char *failed = NULL;
	char	   *normal;
	char	   *scheme;
	char	   *origin;
	ListCell   *lc;
	MemoryContext old;

	if (easy == NULL)
	{
		*error = pstrdup("could not start a transfer");
		return false;
	}
	/* libcurl says what is wrong with a URL that does not parse */
	if (!http_parse_url(req->url, &normal, &scheme, &origin))
		origin = NULL;
	old = MemoryContextSwitchTo(TopMemoryContext);
	t = palloc0(sizeof(HttpTransfer));
	t->owner = owner;
	t->easy = easy;
	initStringInfo(&t->body);
	t->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : http_timeout_ms;
	t->via_proxy = http_proxy != NULL && http_proxy[0] != '\0';
	t->url = pstrdup(req->url);
	t->origin = origin ? pstrdup(origin) : NULL;
	strlcpy(t->method, req->method, sizeof(t->method));
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
	qsort(t->secrets, t->nsecrets, sizeof(ChimeHttpSecret), http_longest_first);
	foreach(lc, req->headers)
	{
		struct curl_slist *more = curl_slist_append(t->headers, lfirst(lc));

		if (more == NULL)
			failed = "curl_slist_append";
		else
			t->headers = more;
	}
	dlist_push_tail(&http_transfers, &t->node);
	http_running++;
	MemoryContextSwitchTo(old);

	http_setopt(easy, &failed, CURLOPT_URL, req->url);
	http_setopt(easy, &failed, CURLOPT_PRIVATE, t);
	http_setopt(easy, &failed, CURLOPT_NOSIGNAL, 1L);
	http_setopt(easy, &failed, CURLOPT_PROTOCOLS_STR, "http,https");
	/* "" is no proxy, whatever the environment says */
	http_setopt(easy, &failed, CURLOPT_PROXY, t->via_proxy ? http_proxy : "");
	/* and no_proxy in the environment does not bypass cron.http_proxy */
	http_setopt(easy, &failed, CURLOPT_NOPROXY, "");
	/* redirects are followed by http_redirect */
	http_setopt(easy, &failed, CURLOPT_FOLLOWLOCATION, 0L);
	http_setopt(easy, &failed, CURLOPT_WRITEFUNCTION, http_write);
	http_setopt(easy, &failed, CURLOPT_WRITEDATA, t);
	http_setopt(easy, &failed, CURLOPT_HEADERFUNCTION, http_header);
	http_setopt(easy, &failed, CURLOPT_HEADERDATA, t);
	http_setopt(easy, &failed, CURLOPT_OPENSOCKETFUNCTION, http_open_socket);
	http_setopt(easy, &failed, CURLOPT_OPENSOCKETDATA, t);
	http_setopt(easy, &failed, CURLOPT_ERRORBUFFER, t->error);
	http_setopt(easy, &failed, CURLOPT_USERAGENT, "pg_chime");
	http_setopt(easy, &failed, CURLOPT_HTTPHEADER, t->headers);
	http_setopt(easy, &failed, CURLOPT_CUSTOMREQUEST, req->method);
	if (strcmp(req->method, "HEAD") == 0)
		http_setopt(easy, &failed, CURLOPT_NOBODY, 1L);
	if (req->body)
		http_setopt(easy, &failed, CURLOPT_COPYPOSTFIELDS, req->body);
	t->started = GetCurrentTimestamp();
	if (failed == NULL)
		(void) http_hop(t, &failed);
	if (failed)
	{
		elog(LOG, "pg_chime: could not start a transfer: %s failed", failed);
		*error = pstrdup("could not start a transfer");
		http_free(t);
		return false;
	}
	return true;
}

/*
 * The result of a transfer that could not go on to its next step because a
 * libcurl call failed: worth a retry.
 */
static ChimeHttpResult *
http_stalled(HttpTransfer *t, const char *failed)
{
	ChimeHttpResult *r = palloc0(sizeof(ChimeHttpResult));

	elog(LOG, "pg_chime: could not go on with a transfer: %s failed", failed);
	r->owner = t->owner;
	r->message = pstrdup("could not start a transfer");
	r->retry = true;
	return r;
}

/* A result that is a refusal: not retried, no status, no body. */
static ChimeHttpResult *
http_refusal(HttpTransfer *t, const char *message)
{
	ChimeHttpResult *r = palloc0(sizeof(ChimeHttpResult));

	r->owner = t->owner;
	r->message = http_scrub(t, message, strlen(message), NULL);
	return r;
}

/* The result of a finished transfer (allocated in the current context) */
static ChimeHttpResult *
http_result(HttpTransfer *t, CURLcode code)
{
	ChimeHttpResult *r = palloc0(sizeof(ChimeHttpResult));
	long		status = 0;
	long		ms = (long) ((GetCurrentTimestamp() - t->started) / 1000);
	char	   *message;

	r->owner = t->owner;
	if (curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
		status = 0;
	if (t->too_big)
	{
		message = psprintf("refused: response larger than cron.http_max_response_size (%d bytes)",
						   http_max_response_size);
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
	r->message = http_scrub(t, message, strlen(message), NULL);
	if (t->body.len > 0 || r->status > 0)
	{
		int			len;
		char	   *body = http_scrub(t, t->body.data, t->body.len, &len);

		r->body = pnstrdup(body, len);
	}
	return r;
}

/*
 * The response of this hop was a redirect to 'location' (status 'status'):
 * start the next hop (NULL), or the result refusing it.  See the file's
 * header for the rules.
 */
static ChimeHttpResult *
http_redirect(HttpTransfer *t, long status, const char *location)
{
	char	   *url;
	char	   *scheme;
	char	   *origin;
	const char *failed = NULL;
	bool		same_origin;

	if (t->redirects >= http_max_redirects)
		return http_refusal(t, psprintf("refused: more than %d redirects (cron.http_max_redirects)",
										http_max_redirects));
	if (!http_parse_url(location, &url, &scheme, &origin))
		return http_refusal(t, "refused: a redirect to an invalid URL");
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
		return http_refusal(t, "refused: only http and https are allowed (a redirect went elsewhere)");
	if (origin == NULL)
		return http_refusal(t, "refused: a redirect to an invalid URL");
	same_origin = t->origin != NULL && strcmp(origin, t->origin) == 0;
	if (!same_origin && t->carries_secret)
		return http_refusal(t, psprintf("refused: redirect to another origin (%s) from a request that carries a secret",
										origin));

	if ((status == 303 && strcmp(t->method, "HEAD") != 0) ||
		((status == 301 || status == 302) && strcmp(t->method, "POST") == 0))
	{
		http_setopt(t->easy, &failed, CURLOPT_HTTPGET, 1L);
		http_setopt(t->easy, &failed, CURLOPT_CUSTOMREQUEST, (char *) NULL);
		strlcpy(t->method, "GET", sizeof(t->method));
	}
	if (!same_origin)
	{
		/* what libcurl would not send to another origin either */
		struct curl_slist *kept = NULL;

		for (struct curl_slist *h = t->headers; h && failed == NULL; h = h->next)
		{
			struct curl_slist *more;

			if (pg_strncasecmp(h->data, "authorization:", 14) == 0 ||
				pg_strncasecmp(h->data, "cookie:", 7) == 0)
				continue;
			more = curl_slist_append(kept, h->data);
			if (more == NULL)
				failed = "curl_slist_append";
			else
				kept = more;
		}
		http_setopt(t->easy, &failed, CURLOPT_HTTPHEADER, kept);
		if (failed)
			curl_slist_free_all(kept);
		else
		{
			curl_slist_free_all(t->headers);
			t->headers = kept;
		}
	}
	http_setopt(t->easy, &failed, CURLOPT_URL, url);
	if (failed == NULL)
	{
		char	   *old = t->url;

		t->url = MemoryContextStrdup(TopMemoryContext, url);
		pfree(old);
		t->redirects++;
		resetStringInfo(&t->body);
		t->bytes = 0;
		t->reason[0] = '\0';
		t->retry_after_s = 0;
		if (http_time_left(t) <= 0)
			return http_result(t, CURLE_OPERATION_TIMEDOUT);
		if (http_hop(t, &failed))
			return NULL;
	}
	return http_stalled(t, failed);
}

/* The request of a hop ended: the next hop started (NULL) or the result. */
static ChimeHttpResult *
http_answered(HttpTransfer *t, CURLcode code)
{
	long		status = 0;
	char	   *location = NULL;

	if (curl_multi_remove_handle(http_multi, t->easy) != CURLM_OK)
		elog(WARNING, "pg_chime: libcurl could not remove a transfer");
	t->easy_added = false;
	if (code == CURLE_OK && !t->too_big && http_max_redirects > 0 &&
		curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
		status >= 300 && status < 400 && status != 304 && status != 305 &&
		curl_easy_getinfo(t->easy, CURLINFO_REDIRECT_URL, &location) == CURLE_OK &&
		location != NULL)
		return http_redirect(t, status, location);
	return http_result(t, code);
}

/* The probe of a hop ended: the request sent (NULL) or the result. */
static ChimeHttpResult *
http_probed(HttpTransfer *t, CURLcode code)
{
	const char *failed = NULL;

	if (curl_multi_remove_handle(http_multi, t->probe) != CURLM_OK)
		elog(WARNING, "pg_chime: libcurl could not remove a probe");
	curl_easy_cleanup(t->probe);
	t->probe = NULL;
	if (t->refused[0] != '\0')
		return http_refusal(t, t->refused);
	if (t->allowed == 0)
		return http_result(t, code == CURLE_OK ? CURLE_COULDNT_RESOLVE_HOST : code);
	t->error[0] = '\0';
	if (http_time_left(t) <= 0)
		return http_result(t, CURLE_OPERATION_TIMEDOUT);
	if (http_send(t, Max(http_time_left(t), 1), &failed))
		return NULL;
	return http_stalled(t, failed);
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
		HttpTransfer *t = NULL;
		CURL	   *easy = msg->easy_handle;
		CURLcode	code = msg->data.result;
		ChimeHttpResult *r;

		if (msg->msg != CURLMSG_DONE)
			continue;
		if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &t) != CURLE_OK || t == NULL)
			elog(ERROR, "pg_chime: a libcurl transfer without its state");
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
chime_http_cancel(bool (*match) (void *owner, void *arg), void *arg, const char *message)
{
	dlist_mutable_iter iter;
	List	   *results = NIL;

	dlist_foreach_modify(iter, &http_transfers)
	{
		HttpTransfer *t = dlist_container(HttpTransfer, node, iter.cur);
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
