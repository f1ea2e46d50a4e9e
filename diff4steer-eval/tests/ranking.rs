//! Ranking metrics against values computed by hand, and metric names.

use diff4steer_eval::{evaluate, EvalError, Qrels, RankingMetric, Run};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// q1: grades d1 = 2, d3 = 1, d5 = 3 (R = 3), ranked d1 d2 d3 d4 d5.
/// q2: d9 relevant, ranked d7 d8 (no hit). q3: judged, nothing relevant. q4: judged, no run.
fn fixture() -> (Run, Qrels) {
    let mut qrels = Qrels::new();
    for (q, d, g) in [
        ("q1", "d1", 2),
        ("q1", "d3", 1),
        ("q1", "d5", 3),
        ("q1", "d2", 0),
        ("q2", "d9", 1),
        ("q3", "d1", 0),
        ("q4", "d1", 1),
    ] {
        qrels.insert(q, d, g).unwrap();
    }
    let mut run = Run::new();
    for (i, d) in ["d1", "d2", "d3", "d4", "d5"].iter().enumerate() {
        run.push("q1", d, 1.0 - i as f64 / 10.0).unwrap();
    }
    run.push("q2", "d7", 0.5).unwrap();
    run.push("q2", "d8", 0.4).unwrap();
    run.push("q3", "d1", 0.4).unwrap();
    run.push("q5", "d1", 0.4).unwrap(); // not judged: ignored
    (run, qrels)
}

#[test]
fn hand_computed_values() {
    let (run, qrels) = fixture();
    let log2 = |x: f64| x.log2();
    let idcg = 3.0 + 2.0 / log2(3.0) + 1.0 / log2(4.0);
    let expected_q1 = [
        ("precision@1", 1.0),
        ("precision@3", 2.0 / 3.0),
        ("precision@10", 0.3), // k larger than the list: still divided by k
        ("recall@2", 1.0 / 3.0),
        ("recall@5", 1.0),
        ("mrr", 1.0),
        ("map", (1.0 + 2.0 / 3.0 + 3.0 / 5.0) / 3.0),
        ("map@3", (1.0 + 2.0 / 3.0) / 3.0),
        ("ndcg@3", (2.0 + 1.0 / log2(4.0)) / idcg),
        ("ndcg@5", (2.0 + 1.0 / log2(4.0) + 3.0 / log2(6.0)) / idcg),
        ("hit_rate@1", 1.0),
        ("r-precision", 2.0 / 3.0),
    ];
    let metrics: Vec<RankingMetric> = expected_q1
        .iter()
        .map(|(n, _)| n.parse().unwrap())
        .collect();
    let report = evaluate(&run, &qrels, &metrics).unwrap();
    assert_eq!(report.queries, 4);
    assert_eq!(report.queries_without_relevant, 1);
    assert_eq!(report.queries_without_run, 1);
    for (name, value) in expected_q1 {
        let got = report.per_query["q1"][name];
        assert!(close(got, value), "{name}: {got} vs {value}");
        for q in ["q2", "q3", "q4"] {
            assert_eq!(report.per_query[q][name], 0.0, "{q} {name}");
        }
        assert!(close(report.mean[name], value / 4.0), "mean {name}");
    }
    assert!(!report.per_query.contains_key("q5"));
    let text = report.to_string();
    assert!(
        text.contains("ndcg@3") && text.contains("4 queries"),
        "{text}"
    );
}

#[test]
fn ties_follow_the_list_order_and_mrr_cut_offs() {
    let mut qrels = Qrels::new();
    qrels.insert("q", "b", 1).unwrap();
    let mut run = Run::new();
    for d in ["a", "b", "c"] {
        run.push("q", d, 0.5).unwrap(); // all tied: the order given is the ranking
    }
    let value = |m: &str| evaluate(&run, &qrels, &[m.parse().unwrap()]).unwrap().mean[m];
    assert!(close(value("mrr"), 0.5));
    assert_eq!(value("mrr@1"), 0.0);
    assert!(close(value("precision@2"), 0.5));
    assert_eq!(value("hit_rate@1"), 0.0);
    assert_eq!(value("hit_rate@2"), 1.0);
}

#[test]
fn runs_and_qrels_reject_bad_entries() {
    let mut run = Run::new();
    run.push("q", "a", 1.0).unwrap();
    assert!(matches!(
        run.push("q", "a", 0.5),
        Err(EvalError::InvalidParameter { .. })
    ));
    assert!(matches!(
        run.push("q", "b", f64::NAN),
        Err(EvalError::NonFinite { .. })
    ));
    let mut qrels = Qrels::new();
    qrels.insert("q", "a", 1).unwrap();
    assert!(qrels.insert("q", "a", 2).is_err());
    assert!(matches!(
        evaluate(&run, &Qrels::new(), &[RankingMetric::RPrecision]),
        Err(EvalError::Shape { .. })
    ));
    assert!(matches!(
        evaluate(&run, &qrels, &[]),
        Err(EvalError::InvalidParameter { .. })
    ));
}

#[test]
fn metric_names_round_trip_and_bad_names_are_errors() {
    for name in [
        "recall@50",
        "precision@10",
        "ndcg@10",
        "map",
        "map@100",
        "mrr",
        "mrr@10",
        "hit_rate@5",
        "r-precision",
    ] {
        let metric: RankingMetric = name.parse().unwrap();
        assert_eq!(metric.to_string(), name);
    }
    assert_eq!(
        "NDCG@10".parse::<RankingMetric>().unwrap(),
        RankingMetric::Ndcg { k: 10 }
    );
    assert_eq!(
        "p@5".parse::<RankingMetric>().unwrap(),
        RankingMetric::Precision { k: 5 }
    );
    assert_eq!(
        "rprec".parse::<RankingMetric>().unwrap(),
        RankingMetric::RPrecision
    );
    for bad in [
        "ndcg@",
        "ndcg@-1",
        "ndcg@0",
        "ndcg@x",
        "recall",
        "foo@3",
        "",
        "r-precision@5",
        "ndcg@1.5",
    ] {
        assert!(
            matches!(
                bad.parse::<RankingMetric>(),
                Err(EvalError::UnknownMetric { .. })
            ),
            "`{bad}` should not parse"
        );
    }
    assert_eq!(
        RankingMetric::parse_list("ndcg@10, recall@50,mrr").unwrap(),
        vec![
            RankingMetric::Ndcg { k: 10 },
            RankingMetric::Recall { k: 50 },
            RankingMetric::Mrr { k: None }
        ]
    );
    assert!(RankingMetric::parse_list(" , ").is_err());
    assert!(RankingMetric::parse_list("ndcg@10,ndcg@").is_err());
}
