#!/bin/bash
# Recompress a whole archive with a Slurm job array: one array task per
# shard, no coordination between them (see docs/recompress.md).
#
#   sbatch --array=0-15 scripts/slurm-recompress.sh /archive jxl
#
# then, once every task has finished, merge their reports:
#
#   fpack-ng recompress --merge-reports --report recompress-all.json \
#       recompress-reports/shard-*-of-16.json
#
# A task that was killed (time limit, pre-emption, node failure) is simply
# submitted again with the same index (`sbatch --array=7 ...`): its journal
# makes it resume where it stopped. Every task must be given the same
# ARCHIVE and algorithm arguments, spelled the same way: the shard of a file
# is a hash of its path relative to ARCHIVE.
#
#SBATCH --job-name=fpack-ng-recompress
#SBATCH --cpus-per-task=8
#SBATCH --mem=16G
#SBATCH --time=12:00:00
#SBATCH --output=recompress-logs/%A_%a.out
#SBATCH --requeue

set -euo pipefail

ARCHIVE=${1:?usage: sbatch --array=0-(N-1) slurm-recompress.sh ARCHIVE ALG [fpack-ng flags...]}
ALG=${2:?target algorithm, e.g. jxl or rice}
shift 2

INDEX=${SLURM_ARRAY_TASK_ID:?run this through sbatch --array}
# The array's size: N shards for --array=0-(N-1).
COUNT=${SLURM_ARRAY_TASK_COUNT:?run this through sbatch --array}

STATE=${RECOMPRESS_STATE:-$PWD/recompress-state}
REPORTS=${RECOMPRESS_REPORTS:-$PWD/recompress-reports}
mkdir -p "$STATE" "$REPORTS" recompress-logs

exec fpack-ng recompress \
    --to "$ALG" \
    --shard "$INDEX/$COUNT" \
    --threads "${SLURM_CPUS_PER_TASK:-1}" \
    --memory $(( ${SLURM_MEM_PER_NODE:-16384} * 3 / 4 )) \
    --journal "$STATE/shard-$INDEX-of-$COUNT.journal" \
    --report "$REPORTS/shard-$INDEX-of-$COUNT.json" \
    --quiet \
    "$@" \
    "$ARCHIVE"
