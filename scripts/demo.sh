#!/usr/bin/env bash
# make run's demo, on a running stack: answer QUESTION over TENANT, ingesting the demo corpus
# first where it is not in yet. A newcomer should not wait for all ~500 pages (~24,000 chunks,
# many minutes on a laptop's CPU) before a first answer, so the first run ingests the pages a
# newcomer reads first, answers, and ingests the rest in the background. Both ingestions share
# one journal: nothing is sent twice, and an interrupted one resumes on the next make run.
# Usage: scripts/demo.sh TENANT QUESTION
set -euo pipefail
cd "$(dirname "$0")/.."
tenant=$1 question=$2
ragplane=.venv/bin/ragplane
journal=.run/demo-corpus.journal
done_marker=.run/demo-corpus.ingested
log=.run/logs/demo-ingest.log
# The Python tutorial, installing and using Python, and the page of the demo question's module:
# 26 documents, about 1,000 chunks, a minute or two of ingestion.
first_pages=(tutorial/ installing/ using/ library/venv.rst.txt)
busy=75 # ragplane ingest: another ingestion writes the journal

ask() {
  echo; echo "Q: $question"; echo
  "$ragplane" ask --tenant "$tenant" "$question"
}

if [ -f "$done_marker" ]; then
  echo "demo corpus already ingested (delete $done_marker to ingest again)"
  ask
  exit
fi

corpus=$(scripts/fetch-corpus.sh)
status=0
echo "==> ingesting the demo corpus's first pages: ${first_pages[*]}"
"$ragplane" ingest "$corpus" --tenant "$tenant" --journal "$journal" \
  "${first_pages[@]/#/--only=}" || status=$?
((status == 0 || status == busy)) || exit "$status"
echo
echo "(answering from the $(wc -l <"$journal") demo documents ingested so far; the rest follow" \
  "in the background)"
ask
if ((status == busy)); then
  echo; echo "The rest of the demo corpus is still being ingested: tail -f $log"
  exit
fi
mkdir -p "$(dirname "$log")"
# setsid and nohup: the ingestion outlives this terminal; it stops when the stack stops
# (make stop) and resumes on the next make run.
setsid nohup bash -c '"$0" ingest "$1" --tenant "$2" --journal "$3" && touch "$4"' \
  "$ragplane" "$corpus" "$tenant" "$journal" "$done_marker" >>"$log" 2>&1 </dev/null &
echo
echo "Ingesting the rest of the demo corpus in the background (pid $!): tail -f $log"
