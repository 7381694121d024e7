#!/usr/bin/env bash
# watchdog.sh SECONDS REPORT SUITE: runs SUITE in a session of its own and
# returns its exit status; if it is still running after SECONDS, writes to
# REPORT what every process of that session is doing (ps, and each
# program's stacks through gdb when gdb is there), stops the suite and
# exits 124. A suite that hangs (a client blocked on a server that will
# never answer, a wait for a process that never ends) then fails in bounded
# time and says where it hung, instead of holding the whole run until CI's
# own limit cuts it off with no word of which suite it was.
#
# Stopping: SIGTERM to the suite's shell, so its EXIT trap stops the
# servers it started, and SIGKILL to the programs it waits for (a shell
# runs its traps only once its foreground child ends); after 30 s more,
# SIGKILL to whatever of the session is left.
set -u
. "$(dirname "$0")/../system/server_helpers.sh"   # print_stacks
limit=$1 report=$2 suite=$3
rm -f "$report"
setsid "$suite" &
pid=$!
# setsid(1) forks only when it is a process group leader, which a
# background job of this non-interactive shell is not: $pid is the suite's
# shell and its session id.
for ((waited = 0; waited < limit; waited++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid"; exit; }
    sleep 1
done
kill -0 "$pid" 2>/dev/null || { wait "$pid"; exit; }
{
    echo "TIMEOUT: $(basename "$suite") still running after $limit s; its processes:"
    ps -s "$pid" -o pid,ppid,etime,stat,wchan:24,args | cut -c1-200
    programs=$(ps -s "$pid" -o pid=,comm= |
        awk '$2 !~ /^(bash|sh|sleep|timeout|postgres|redis-server|nats-server|ps|awk|cat|tail|grep|sed)$/ { print $1 }')
    for p in $programs; do
        echo "--- stacks of $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-160)"
        print_stacks "$p"
    done
} >"$report" 2>&1
kill -TERM "$pid" 2>/dev/null
for p in $programs; do kill -KILL "$p" 2>/dev/null; done
for ((waited = 0; waited < 30 && $(kill -0 "$pid" 2>/dev/null && echo 1 || echo 0); waited++)); do
    sleep 1
done
kill -KILL -- "-$pid" 2>/dev/null
wait "$pid" 2>/dev/null
exit 124
