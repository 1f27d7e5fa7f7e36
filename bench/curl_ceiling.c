/*
 * curl_ceiling: how many requests a second one libcurl multi handle gets
 * from a server on this machine, with a given number in flight.  The
 * ceiling pg_chime's HTTP jobs are compared with.
 *
 *   curl_ceiling URL REQUESTS IN_FLIGHT
 *
 * Prints "<requests> requests in <seconds> s: <rate> requests/s, <failed> failed".
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <curl/curl.h>

static size_t
discard(char *data, size_t size, size_t nmemb, void *userp)
{
	return size * nmemb;
}

static CURL *
request(const char *url)
{
	CURL	   *easy = curl_easy_init();

	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 30000L);
	return easy;
}

int
main(int argc, char **argv)
{
	const char *url;
	long		total,
				in_flight,
				started = 0,
				done = 0,
				failed = 0;
	CURLM	   *multi;
	struct timespec t0,
				t1;
	double		secs;

	if (argc != 4)
	{
		fprintf(stderr, "usage: %s URL REQUESTS IN_FLIGHT\n", argv[0]);
		return 2;
	}
	url = argv[1];
	total = atol(argv[2]);
	in_flight = atol(argv[3]);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	multi = curl_multi_init();
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, in_flight);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (done < total)
	{
		int			running;
		int			left;
		CURLMsg    *msg;

		while (started < total && started - done < in_flight)
		{
			curl_multi_add_handle(multi, request(url));
			started++;
		}
		curl_multi_perform(multi, &running);
		while ((msg = curl_multi_info_read(multi, &left)) != NULL)
		{
			long		status = 0;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
			if (msg->data.result != CURLE_OK || status != 200)
				failed++;
			curl_multi_remove_handle(multi, msg->easy_handle);
			curl_easy_cleanup(msg->easy_handle);
			done++;
		}
		if (done < total)
			curl_multi_poll(multi, NULL, 0, 100, NULL);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("%ld requests in %.3f s: %.0f requests/s, %ld failed\n", total, secs, total / secs, failed);
	curl_multi_cleanup(multi);
	curl_global_cleanup();
	return failed > 0;
}
