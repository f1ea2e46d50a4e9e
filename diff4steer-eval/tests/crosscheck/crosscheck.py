"""Independent reference values for diff4steer-eval's metrics.

Computes ranking metrics on the committed fixture run/qrels with two independent implementations,
ranx (numba) and pytrec_eval (trec_eval's C code), checks that they agree with each other, and
computes Vendi scores with the `vendi-score` package and Fréchet distances with scipy's `sqrtm`
(the textbook FID formula). Writes expected.json, which `cargo test -p diff4steer-eval --test
crosscheck` compares with our implementation to 1e-6.

Run through crosscheck.sh (it makes a temporary venv from PyPI). `--make-fixtures` rewrites the
fixture files from a fixed seed (only needed when changing them).
"""

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def make_fixtures():
    rng = np.random.default_rng(20261125)
    run_lines, qrels_lines = [], []
    for q in range(30):
        docs = [f"d{i}" for i in rng.permutation(200)[:60]]
        n_judged = int(rng.integers(5, 40))
        judged = rng.choice(200, size=n_judged, replace=False)
        grades = rng.integers(0, 4, size=n_judged)
        if q == 0:
            grades[:] = 0  # a query without relevant documents
        if q == 1:
            grades[0] = 3  # make sure some query has a relevant document unranked
        for doc, grade in zip(judged, grades):
            qrels_lines.append(f"q{q} 0 d{doc} {grade}")
        length = int(rng.integers(1, 61))  # lists shorter and longer than the cut-offs
        scores = np.sort(rng.choice(100000, size=length, replace=False))[::-1] / 1000.0
        for rank, (doc, score) in enumerate(zip(docs[:length], scores), start=1):
            run_lines.append(f"q{q} Q0 {doc} {rank} {score:.3f} fixture")
    (HERE / "qrels.txt").write_text("\n".join(qrels_lines) + "\n")
    (HERE / "run.txt").write_text("\n".join(run_lines) + "\n")
    vectors = rng.normal(size=(8 * 12, 6)).astype(np.float32)
    vectors[12:15] = vectors[12]  # near-duplicates in set 1
    vectors[24:36] *= np.array([5, 1, 1, 0.2, 0.2, 0.2], dtype=np.float32)  # anisotropic set 2
    np.save(HERE / "vectors.npy", vectors)


# Our metric name → (ranx name, pytrec_eval measure and key or None).
METRICS = {
    "ndcg@5": ("ndcg@5", "ndcg_cut_5"),
    "ndcg@10": ("ndcg@10", "ndcg_cut_10"),
    "ndcg@20": ("ndcg@20", "ndcg_cut_20"),
    "recall@10": ("recall@10", "recall_10"),
    "recall@50": ("recall@50", "recall_50"),
    "precision@5": ("precision@5", "P_5"),
    "precision@10": ("precision@10", "P_10"),
    "map": ("map", "map"),
    "map@10": ("map@10", "map_cut_10"),
    "mrr": ("mrr", "recip_rank"),
    "mrr@10": ("mrr@10", None),
    "hit_rate@10": ("hit_rate@10", "success_10"),
    "r-precision": ("r-precision", "Rprec"),
}


def read_trec():
    qrels, run = {}, {}
    for line in (HERE / "qrels.txt").read_text().split("\n"):
        if line.strip():
            q, _, d, g = line.split()
            qrels.setdefault(q, {})[d] = int(g)
    for line in (HERE / "run.txt").read_text().split("\n"):
        if line.strip():
            q, _, d, _, s, _ = line.split()
            run.setdefault(q, {})[d] = float(s)
    return qrels, run


def ranking_reference():
    import pytrec_eval
    from ranx import Qrels, Run, evaluate

    qrels, run = read_trec()
    # ranx drops queries without a relevant document and grade-0 judgments; we (like trec_eval
    # with every query judged) score such a query 0, which is what both give when it is kept.
    per_query = {q: {} for q in qrels}
    ranx_qrels = Qrels({q: {d: g for d, g in docs.items() if g > 0} for q, docs in qrels.items()})
    ranx_run = Run(run)
    ranx_values = evaluate(ranx_qrels, ranx_run, [r for r, _ in METRICS.values()], return_mean=False, make_comparable=True)
    evaluator = pytrec_eval.RelevanceEvaluator(
        qrels, {"ndcg_cut.5,10,20", "recall.10,50", "P.5,10", "map", "map_cut.10", "recip_rank", "success.10", "Rprec"}
    )
    trec_values = evaluator.evaluate(run)
    queries = sorted(qrels)
    disagreements = 0
    for ours, (ranx_name, trec_key) in METRICS.items():
        values = ranx_values[ranx_name]
        ranx_of = dict(zip(ranx_qrels.keys(), values))  # ranx returns values in qrels order
        for q in queries:
            has_relevant = any(g > 0 for g in qrels[q].values())
            r = float(ranx_of.get(q, 0.0)) if has_relevant else 0.0
            if trec_key is not None:
                t = float(trec_values.get(q, {}).get(trec_key, 0.0))
                if abs(r - t) > 1e-9:
                    disagreements += 1
                    print(f"ranx and trec_eval disagree on {ours} for {q}: {r} vs {t}")
            per_query[q][ours] = r
    return per_query, disagreements


def vendi_and_frechet():
    from scipy import linalg
    from vendi_score import vendi

    vectors = np.load(HERE / "vectors.npy").astype(np.float64)
    sets = vectors.reshape(8, 12, -1)
    vendi_scores = []
    for x in sets:
        unit = x / np.linalg.norm(x, axis=1, keepdims=True)
        vendi_scores.append(float(vendi.score_K(unit @ unit.T)))
    frechet = []
    for a, b in zip(sets[:-1], sets[1:]):
        mu_a, mu_b = a.mean(0), b.mean(0)
        cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        root = linalg.sqrtm(cov_a @ cov_b)
        frechet.append(float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * np.real(root))))
    return vendi_scores, frechet


def main():
    if "--make-fixtures" in sys.argv:
        make_fixtures()
    per_query, disagreements = ranking_reference()
    vendi_scores, frechet = vendi_and_frechet()
    expected = {
        "note": "written by crosscheck.py from ranx and pytrec_eval (ranking), vendi-score and scipy",
        "ranking": per_query,
        "vendi_sets_of_12": vendi_scores,
        "frechet_consecutive_sets": frechet,
    }
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    print(f"{len(per_query)} queries x {len(METRICS)} metrics; ranx vs trec_eval disagreements: {disagreements}")
    if disagreements:
        sys.exit(1)


if __name__ == "__main__":
    main()
