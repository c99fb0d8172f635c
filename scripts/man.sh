#!/bin/sh
# man.sh: a man page (roff, section 1) made from a stage's own -h text, so
# page and program never disagree: usage line, summary, options, details.
# usage: scripts/man.sh STAGE-BINARY VERSION > diffmm-STAGE.1
set -eu
bin=$1 version=$2
name=${bin##*/}
"$bin" -h | awk -v name="$name" -v version="$version" '
function esc(s) { gsub(/\\/, "\\e", s); gsub(/-/, "\\-", s); sub(/^[.'"'"']/, "\\\\\\&&", s); return s }
NR == 1 { sub(/^usage: [^ ]* */, ""); synopsis = $0; next }
section == "" && /^$/ { if (summary != "") section = "after"; next }
section == "" { summary = summary (summary == "" ? "" : "\n") $0; next }
/^(common )?options:$/ { section = "options"; next }
section == "gap" && !/^$/ { section = "details" }
section == "options" && /^ +-/ {
    line = $0; sub(/^ +/, "", line)
    # the option part ends at two spaces before its help
    if (match(line, /  +/)) { opt = substr(line, 1, RSTART - 1); help = substr(line, RSTART + RLENGTH) } else { opt = line; help = "" }
    if (opt ~ /^-[a-z], /) opt = substr(opt, 1, 2) ", " substr(opt, 5)
    nopt++; O[nopt] = opt; H[nopt] = help; next
}
section == "options" && /^ +[^ -]/ && nopt { line = $0; sub(/^ +/, "", line); H[nopt] = (H[nopt] == "" ? line : H[nopt] " " line); next }
section == "options" && /^$/ { section = "gap"; next }
section == "details" || section == "after" { details = details $0 "\n"; next }
END {
    # NAME: the first clause of the summary (to the first ": " or ". ")
    first = summary; gsub(/\n/, " ", first)
    if (match(first, /(: |\. )/)) first = substr(first, 1, RSTART - 1)
    printf ".TH DIFFMM\\-%s 1 \"\" \"diffmm %s\" \"diffmm manual\"\n", toupper(esc(name)), esc(version)
    printf ".SH NAME\ndiffmm\\-%s \\- %s\n", esc(name), esc(first)
    printf ".SH SYNOPSIS\n.B diffmm %s\n%s\n", esc(name), esc(synopsis)
    printf ".SH DESCRIPTION\n"; n = split(summary, S, "\n"); for (i = 1; i <= n; i++) print esc(S[i])
    printf ".SH OPTIONS\n"
    for (i = 1; i <= nopt; i++) printf ".TP\n.B %s\n%s\n", esc(O[i]), esc(H[i])
    if (details != "") {
        printf ".SH DETAILS\n.nf\n"; n = split(details, D, "\n"); for (i = 1; i < n; i++) print esc(D[i]); printf ".fi\n"
    }
    printf ".SH SEE ALSO\n.BR diffmm (1)\n"
}'
