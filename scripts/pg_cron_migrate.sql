-- The second half of scripts/pg_cron_migrate.sh: pg_temp.pg_cron_job holds
-- the rows of pg_cron's cron.job; each becomes a pg_chime job through the
-- API, in a subtransaction of its own (a job pg_chime refuses is listed,
-- and the others are copied).
CREATE TEMP TABLE pg_cron_migrated (
    old_jobid bigint, new_jobid bigint, jobname text, schedule text, outcome text);

DO $$
DECLARE
    r      record;
    sched  text;
    fields text[];
    id     bigint;
    tmp    text;
BEGIN
    FOR r IN SELECT * FROM pg_temp.pg_cron_job ORDER BY jobid LOOP
        sched := pg_catalog.regexp_replace(r.schedule, '^\s+|\s+$', '', 'g');
        fields := pg_catalog.regexp_split_to_array(sched, '\s+');
        -- pg_cron 1.x reads five fields and ignores a sixth
        IF pg_catalog.array_length(fields, 1) = 6 AND pg_catalog.left(sched, 1) <> '@' THEN
            sched := pg_catalog.array_to_string(fields[1:5], ' ');
        END IF;
        -- an unnamed job copied by an earlier run of the script is not copied again
        IF r.jobname IS NULL THEN
            SELECT j.jobid INTO id FROM cron.job j
            WHERE j.jobname IS NULL AND j.schedule OPERATOR(pg_catalog.=) sched
              AND j.command OPERATOR(pg_catalog.=) r.command
              AND j.database OPERATOR(pg_catalog.=) coalesce(r.database, pg_catalog.current_database())
              AND j.username OPERATOR(pg_catalog.=) r.username
            LIMIT 1;
            IF FOUND THEN
                INSERT INTO pg_temp.pg_cron_migrated VALUES (r.jobid, id, NULL, sched, 'copied before');
                CONTINUE;
            END IF;
        END IF;
        BEGIN
            -- made for its owner at once (so cron.enable_superuser_jobs = off
            -- refuses only jobs that run as a superuser); an unnamed job is
            -- made under a name no job of its owner has, which it then loses
            tmp := 'pg_cron job ' || r.jobid || ' (migrating)';
            WHILE EXISTS (SELECT 1 FROM cron.job j WHERE j.jobname OPERATOR(pg_catalog.=) tmp
                          AND j.username OPERATOR(pg_catalog.=) r.username) LOOP
                tmp := tmp || '+';
            END LOOP;
            id := cron.schedule_in_database(coalesce(r.jobname, tmp),
                                            sched, r.command, r.database, r.username, coalesce(r.active, true));
            IF r.jobname IS NULL THEN
                UPDATE cron.job SET jobname = NULL WHERE jobid OPERATOR(pg_catalog.=) id;
            END IF;
            INSERT INTO pg_temp.pg_cron_migrated
            VALUES (r.jobid, id, r.jobname, sched,
                    CASE WHEN pg_catalog.array_length(fields, 1) = 6 AND pg_catalog.left(sched, 1) <> '@'
                         THEN 'copied; sixth field dropped' ELSE 'copied' END);
        EXCEPTION WHEN OTHERS THEN
            INSERT INTO pg_temp.pg_cron_migrated
            VALUES (r.jobid, NULL, r.jobname, r.schedule, 'not copied: ' || SQLERRM);
        END;
    END LOOP;
END
$$;

SELECT old_jobid, new_jobid, jobname, schedule, outcome FROM pg_temp.pg_cron_migrated ORDER BY old_jobid;

-- the exit status says whether every job was copied (psql exits 3 here otherwise)
DO $$
DECLARE
    n bigint;
BEGIN
    SELECT count(*) INTO n FROM pg_temp.pg_cron_migrated WHERE new_jobid IS NULL;
    IF n > 0 THEN
        RAISE EXCEPTION '% of pg_cron''s jobs were not copied (listed above); the others were', n
            USING HINT = 'Create what they need (their roles, databases), fix their schedules, and run the script again: named jobs are replaced and unnamed ones copied before are kept, not doubled.';
    END IF;
END
$$;
