#!/bin/bash
# examples/sbatch-sweep.sh: a whole sweep as one Slurm batch job.  The make
# runs inside the job and every stage command becomes a job step of it
# (SUBMIT=srun --exact), at most as many at once as the job has tasks.
# Submit from the repository, with the sweep's settings as arguments:
#   sbatch examples/sbatch-sweep.sh DATASET=tiktok SEEDS='421 7 1' VARIANTS='diffmm nodiff simgraph'
# The #SBATCH lines are defaults; sbatch's own options beat them
# (sbatch --ntasks=8 ...).  Run folders (RUNS=, default runs/ here) must be
# on a filesystem the nodes share.  When the job is pre-empted or requeued,
# the next start of this script runs the same make, which continues every
# run from its first unfinished file (docs/CLUSTER.md).
#SBATCH --job-name=diffmm-sweep
#SBATCH --ntasks=4
#SBATCH --cpus-per-task=2
#SBATCH --mem-per-cpu=2G
#SBATCH --time=2-00:00:00
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=diffmm-sweep-%j.log
set -eu
cd "${SLURM_SUBMIT_DIR:-.}"
echo "sbatch-sweep: job ${SLURM_JOB_ID:-none} on $(uname -n), ${SLURM_NTASKS:-1} tasks x ${SLURM_CPUS_PER_TASK:-2} cpus, $(date -u +%FT%TZ)"
exec make -j"${SLURM_NTASKS:-1}" sweep \
    SUBMIT="srun --exact --ntasks=1 --cpus-per-task=${SLURM_CPUS_PER_TASK:-2} --mem-per-cpu=${SLURM_MEM_PER_CPU:-0}" "$@"
