/*-------------------------------------------------------------------------
 *
 * dispatch.h
 *	  The executor pool as dispatch.c and dispatch_io.c share it: the
 *	  executors and the runs waiting for one.  Private to those two files;
 *	  the rest of the scheduler goes through the functions in sched.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHIME_DISPATCH_H
#define CHIME_DISPATCH_H

#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/shm_mq.h"

/* An executor: one of possibly several for its role */
typedef struct SchedExecutor
{
	SchedRole              *role;
	dsm_segment            *seg;
	shm_mq_handle          *requests;
	shm_mq_handle          *replies;
	BackgroundWorkerHandle *handle;
	int                     pid;      /* 0 until known */
	List                   *queue;    /* SchedRun waiting to be sent */
	List                   *inflight; /* SchedRun sent, in order */
	TimestampTz             idle_since;
	bool                    retiring; /* stale: takes no more runs, goes once idle */
} SchedExecutor;

/*
 * How many runs an executor is given ahead (one running, the rest queued
 * in its shared memory queue), when no idle executor of its role is left
 * and no new one may start.
 */
#define SCHED_PIPELINE 8

extern List *sched_executors;
extern List *sched_backlog;

#endif /* CHIME_DISPATCH_H */
