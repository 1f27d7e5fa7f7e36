/*-------------------------------------------------------------------------
 *
 * http_policy.c
 *	  What HTTP jobs may do: the cron.http_* settings (and the network lists
 *	  and proxy URL they hold), URL parsing, and which addresses a job may
 *	  connect to (libcurl's socket opening callbacks).
 *
 * Addresses: every address a job's URL or a redirect leads to is checked
 * after DNS resolution, before connecting: the unspecified addresses
 * (0.0.0.0/8 and ::, which on Linux reach this host) are always refused,
 * then cron.http_deny_networks, then cron.http_allow_networks when set.
 * Without a proxy the check is libcurl's socket opening callback, so it
 * sees exactly the addresses libcurl connects to; through cron.http_proxy
 * it is the probe's (see http.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "utils/guc.h"

#include "http_int.h"

/* Settings */
int          chime_http_max_in_flight = 1000;
int          chime_http_default_timeout_ms = 30000;
int          chime_http_max_redirects = 5;
int          chime_http_max_response_size = 1024 * 1024;
int          chime_http_max_logged_body = 8192;
char        *chime_http_proxy = NULL;
static char *policy_deny_text = NULL;
static char *policy_allow_text = NULL;

/* A network of cron.http_deny_networks or cron.http_allow_networks */
typedef struct HttpNet
{
	int           family; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	int           bits;
} HttpNet;

typedef struct HttpNets
{
	int     n;
	HttpNet net[FLEXIBLE_ARRAY_MEMBER];
} HttpNets;

static HttpNets *policy_deny = NULL;
static HttpNets *policy_allow = NULL;

/* ---- settings ------------------------------------------------------------ */

/* Parse "a.b.c.d/n, x::/n" into a list of networks; NULL if invalid. */
static HttpNets *
policy_parse_nets(const char *text, char **bad)
{
	char     *copy = pstrdup(text ? text : "");
	char     *tok;
	char     *save = NULL;
	HttpNets *nets = palloc0(offsetof(HttpNets, net) + sizeof(HttpNet) * (strlen(copy) / 2 + 1));

	for (tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save))
	{
		HttpNet *net = &nets->net[nets->n];
		char    *slash = strchr(tok, '/');
		int      maxbits;

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
			char *end;
			long  bits = strtol(slash + 1, &end, 10);

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
policy_check_nets(char **newval, void **extra, GucSource source)
{
	char     *bad = NULL;
	HttpNets *nets = policy_parse_nets(*newval, &bad);
	HttpNets *copy;
	Size      size;

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
policy_assign_deny(const char *newval, void *extra)
{
	policy_deny = extra;
}

static void
policy_assign_allow(const char *newval, void *extra)
{
	policy_allow = extra;
}

/*
 * cron.http_proxy is empty or scheme://[user:password@]host[:port][/], the
 * scheme one libcurl knows for proxies.  (It may hold a password: only
 * superusers can read it.)
 */
static bool
policy_check_proxy(char **newval, void **extra, GucSource source)
{
	static const char *const schemes[] = {"http", "https", "socks4", "socks4a", "socks5", "socks5h"};
	const char              *value = *newval ? *newval : "";
	const char              *sep = strstr(value, "://");
	bool                     known = false;
	const char              *p;

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
							NULL, &chime_http_default_timeout_ms, 30000, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("cron.http_max_redirects", "Most redirects an HTTP job follows.",
							NULL, &chime_http_max_redirects, 5, 0, 100,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("cron.http_max_response_size", "Largest response body an HTTP job accepts.",
							NULL, &chime_http_max_response_size, 1024 * 1024, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomIntVariable("cron.http_max_logged_body", "How much of a response body is kept in cron.job_run_details.",
							NULL, &chime_http_max_logged_body, 8192, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomStringVariable("cron.http_deny_networks", "Networks HTTP jobs may not connect to.",
							   NULL, &policy_deny_text, "169.254.0.0/16, fe80::/10",
							   PGC_SIGHUP, 0, policy_check_nets, policy_assign_deny, NULL);
	DefineCustomStringVariable("cron.http_allow_networks", "When set, the only networks HTTP jobs may connect to.",
							   NULL, &policy_allow_text, "",
							   PGC_SIGHUP, 0, policy_check_nets, policy_assign_allow, NULL);
	DefineCustomStringVariable("cron.http_proxy", "The proxy HTTP jobs go through; empty for none.",
							   "Proxy settings in the server's environment are ignored.",
							   &chime_http_proxy, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, policy_check_proxy, NULL, NULL);
}

/* ---- URLs ---------------------------------------------------------------- */

/*
 * Parse 'url' as libcurl would follow it: the URL to use (encoded) in
 * *normal, its scheme in *scheme (lower case) and, when it has a host, its
 * origin "scheme://host:port" (lower case, default port filled in) in
 * *origin, else NULL there; all in the current memory context.  False if
 * it does not parse at all.
 */
bool
chime_http_parse_url(const char *url, char **normal, char **scheme, char **origin)
{
	CURLU *u = curl_url();
	char  *s = NULL;
	char  *full = NULL;
	char  *host = NULL;
	char  *port = NULL;
	bool   ok = false;

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
policy_in_net(const HttpNet *net, int family, const unsigned char *addr)
{
	int full = net->bits / 8;
	int rest = net->bits % 8;

	if (net->family != family)
		return false;
	if (memcmp(net->addr, addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((net->addr[full] ^ addr[full]) & (0xFF << (8 - rest))) == 0;
}

static bool
policy_in_nets(const HttpNets *nets, int family, const unsigned char *addr)
{
	for (int i = 0; nets && i < nets->n; i++)
		if (policy_in_net(&nets->net[i], family, addr))
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
policy_address_ok(HttpTransfer *t, const struct curl_sockaddr *address)
{
	static const unsigned char zero[16] = {0};
	int                        family = address->family;
	unsigned char              addr[16];
	char                       text[INET6_ADDRSTRLEN] = "?";
	char                       why[sizeof(t->refused)];

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
	if (policy_in_nets(policy_deny, family, addr))
	{
		snprintf(why, sizeof(why), "refused: address %s is in cron.http_deny_networks", text);
		goto refused;
	}
	if (policy_allow && policy_allow->n > 0 && !policy_in_nets(policy_allow, family, addr))
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
curl_socket_t
chime_http_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
	HttpTransfer *t = clientp;

	if (!t->via_proxy && !policy_address_ok(t, address))
		return CURL_SOCKET_BAD;
	return socket(address->family, address->socktype, address->protocol);
}

/*
 * libcurl's socket opening for a probe: check each address the host has,
 * count those allowed, and open none (libcurl then offers the next one, of
 * both families, until none is left).
 */
curl_socket_t
chime_http_probe_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
	HttpTransfer *t = clientp;

	if (policy_address_ok(t, address))
		t->allowed++;
	return CURL_SOCKET_BAD;
}
