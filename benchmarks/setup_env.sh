#!/usr/bin/env bash
# Creates benchmarks/.venv with aerflow (editable) and the peers the benchmark compares
# against. A peer that fails to install is reported and skipped; decode.py then shows it
# as "not installed". Re-running is cheap: pip skips what is already there.
#
#   bash benchmarks/setup_env.sh            # then: benchmarks/.venv/bin/python benchmarks/decode.py
#   PEERS="faery" bash benchmarks/setup_env.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
venv="$here/.venv"
python="${PYTHON:-python3}"
# Versions the benchmark was written against; override with PEERS="faery evlib ...".
peers="${PEERS:-faery==0.7.1 evlib==0.13.2 expelliarmus==1.1.12 evutils==0.3.18 evt3==0.4.1 event_stream==1.6.3 aedat==2.3.0 dv-processing==2.0.4}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)

"${pip[@]}" install --quiet --upgrade pip
"${pip[@]}" install --quiet -e "$repo"

missing=()
for peer in $peers; do
    if ! "${pip[@]}" install --quiet "$peer"; then
        echo "warning: could not install $peer; decode.py will report it as not installed" >&2
        missing+=("$peer")
    fi
done

echo "benchmark environment ready: $venv"
if [ ${#missing[@]} -gt 0 ]; then
    echo "not installed: ${missing[*]}"
fi
echo "run: $venv/bin/python $here/decode.py --quick"
