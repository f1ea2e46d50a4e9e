#!/usr/bin/env bash
# Side-by-side peers from a clean clone: builds our binary, creates a Python venv from PyPI (JAX,
# PyTorch, faiss-cpu, hnswlib), exports the reference workload and runs compare.py, which checks
# agreement first and then times ours and each peer alternately in the same run.
#
#   bash benches/peers/run.sh [--repeats 5] [--sections sgemm,sample,sample64,forward,flat,hnsw]
#   PEERS_ITEMS=100000 PEERS_WORKLOAD=target/peers-100k bash benches/peers/run.sh --sections hnsw
#
# PEERS_VENV (default target/peers-venv) keeps the venv between runs (PyTorch's wheel is large).
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV="${PEERS_VENV:-target/peers-venv}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q -r benches/peers/requirements.txt

cargo build --release -p diff4steer-benches --bin diff4steer-peers
OURS=target/release/diff4steer-peers
DIR="${PEERS_WORKLOAD:-target/peers-workload}"
"$OURS" export --dir "$DIR" --items "${PEERS_ITEMS:-55525}"
"$VENV/bin/python" benches/peers/compare.py --dir "$DIR" --ours "$OURS" "$@"
