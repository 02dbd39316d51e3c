#!/usr/bin/env bash
# A real one-node Slurm cluster on localhost for lrx's tests (Debian's Slurm 22.05: auth/none,
# no munge, no cgroups, no slurmdbd). Usage: source one-node.sh; slurm_up; ...; slurm_down
# SLURM_CI_DIR picks the cluster's folder and SLURM_CI_PORT its first of two ports, so that
# clusters of different test runs on one machine do not meet.
S=${SLURM_CI_DIR:-/tmp/slurm-ci}; export SLURM_CONF=$S/slurm.conf
P=${SLURM_CI_PORT:-6817}
slurm_up() {
  export DEBIAN_FRONTEND=noninteractive
  command -v slurmctld >/dev/null || { apt-get update -qq &&
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client >/dev/null; } || return 1
  [ -x "$(command -v slurmctld)" ] && [ -x "$(command -v slurmd)" ] || { echo "slurmctld/slurmd cannot run" >&2; return 1; }
  rm -rf "$S"; mkdir -p "$S"/{state,spool,log}
  cat > "$SLURM_CONF" <<CONF
ClusterName=ci
SlurmctldHost=localhost
SlurmctldPort=$P
SlurmdPort=$((P + 1))
SlurmUser=root
AuthType=auth/none
CredType=cred/none
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$S/log/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
KillWait=5
MaxArraySize=10001
NodeName=localhost CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  slurmctld -D -i -f "$SLURM_CONF" >"$S/log/ctld.out" 2>&1 & echo $! >"$S/ctld.launch"
  slurmd -D -N localhost -f "$SLURM_CONF" >"$S/log/d.out" 2>&1 & echo $! >"$S/d.launch"
  # At most 30 s, and not a moment longer once a daemon has died (each `sinfo` without a
  # controller would wait for its own timeout).
  local end=$((SECONDS + 30))
  while [ $SECONDS -lt $end ]; do
    kill -0 "$(cat "$S/ctld.launch")" 2>/dev/null && kill -0 "$(cat "$S/d.launch")" 2>/dev/null || break
    [ "$(timeout 5 sinfo -h -o %t 2>/dev/null)" = idle ] && return 0
    sleep 0.5
  done
  echo "slurm did not come up" >&2; cat "$S"/log/*.out >&2; slurm_down; return 1
}
slurm_down() {
  # slurmstepd and the jobs are not children of slurmd: cancel them first (where a controller
  # answers), then stop the daemons, by force after 10 s.
  if kill -0 "$(cat "$S/ctld.launch" 2>/dev/null)" 2>/dev/null; then
    timeout 10 scancel -u "$(id -un)" 2>/dev/null
    for _ in $(seq 50); do [ -z "$(timeout 5 squeue -h 2>/dev/null)" ] && break; sleep 0.2; done
  fi
  local p; for p in $(cat "$S/d.launch" "$S/ctld.launch" 2>/dev/null); do kill "$p" 2>/dev/null; done
  for p in $(cat "$S/d.launch" "$S/ctld.launch" 2>/dev/null); do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$p" 2>/dev/null
  done
  return 0
}
