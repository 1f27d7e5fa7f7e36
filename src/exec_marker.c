/*-------------------------------------------------------------------------
 *
 * exec_marker.c
 *	  The executors' crash markers: while it runs a command, an executor
 *	  keeps the run's id in the file CHIME_CRASH_DIR/executor.<pid> (0
 *	  while idle).
 *
 * The file goes when the executor exits in any orderly way, also when the
 * postmaster tells it to quit (SIGQUIT) because another process crashed;
 * so a file left behind after a crash-restart names the run whose own
 * process died.  The scheduler reads and removes them at its start, when
 * no executor runs (chime_crashed_runs).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>
#include <dirent.h>
#include <fcntl.h>

#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/ipc.h"

#include "exec_internal.h"
#include "executor.h"

static char marker_path[MAXPGPATH];
static int  marker_fd = -1;

void
chime_exec_marker_set(int64 runid)
{
	char buf[32];
	int  len;

	if (marker_fd < 0)
		return;
	len = snprintf(buf, sizeof(buf), "%020lld\n", (long long) runid);
	if (pwrite(marker_fd, buf, len, 0) != len)
		elog(LOG, "pg_chime executor: could not write \"%s\": %m", marker_path);
}

static void
marker_remove(int code, Datum arg)
{
	if (marker_fd >= 0)
	{
		close(marker_fd);
		marker_fd = -1;
		(void) unlink(marker_path);
	}
}

/*
 * SIGQUIT: the postmaster ends every process after a crash, or for an
 * immediate shutdown.  This executor did not crash: remove its marker
 * (unlink is async-signal-safe) and exit as PostgreSQL's handler does.
 */
void
chime_exec_quickdie(SIGNAL_ARGS)
{
	if (marker_path[0] != '\0')
		(void) unlink(marker_path);
	_exit(2);
}

/*
 * Create the marker (after the connection: the directory is under the
 * data directory) and have it removed at exit.  Without one, a crash of
 * this executor goes unnoticed, so failing to make it is only logged.
 */
void
chime_exec_marker_open(void)
{
	Assert(marker_fd < 0);
	if (MakePGDirectory(CHIME_CRASH_DIR) < 0 && errno != EEXIST)
	{
		elog(LOG, "pg_chime executor: could not create directory \"%s\": %m", CHIME_CRASH_DIR);
		return;
	}
	snprintf(marker_path, sizeof(marker_path), "%s/executor.%d", CHIME_CRASH_DIR, MyProcPid);
	marker_fd = BasicOpenFile(marker_path, O_RDWR | O_CREAT | O_TRUNC | PG_BINARY);
	if (marker_fd < 0)
	{
		elog(LOG, "pg_chime executor: could not create \"%s\": %m", marker_path);
		marker_path[0] = '\0';
		return;
	}
	on_proc_exit(marker_remove, 0);
	chime_exec_marker_set(0);
}

List *
chime_crashed_runs(void)
{
	List          *runids = NIL;
	DIR           *dir = AllocateDir(CHIME_CRASH_DIR);
	struct dirent *de;

	if (dir == NULL)
		return NIL; /* no executor ever ran */
	while ((de = ReadDir(dir, CHIME_CRASH_DIR)) != NULL)
	{
		char path[MAXPGPATH];
		char buf[32];
		int  fd;
		int  len;

		if (strncmp(de->d_name, "executor.", 9) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", CHIME_CRASH_DIR, de->d_name);
		fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
		if (fd >= 0)
		{
			len = read(fd, buf, sizeof(buf) - 1);
			CloseTransientFile(fd);
			if (len > 0)
			{
				int64 runid;

				buf[len] = '\0';
				runid = strtoi64(buf, NULL, 10);
				if (runid > 0)
				{
					int64 *p = palloc(sizeof(int64));

					*p = runid;
					runids = lappend(runids, p);
				}
			}
		}
		(void) unlink(path);
	}
	FreeDir(dir);
	return runids;
}
