//! The real `jamendo-mood` data (skipped with a message where ../shared/data is absent).

use diff4steer_eval::{shared_data_dir, JamendoMood};

#[test]
fn jamendo_mood_loads_and_agrees_with_its_own_counts() {
    let Some(data) = shared_data_dir() else {
        eprintln!(
            "skipping: ../shared/data is not present (real data lives only beside the project)"
        );
        return;
    };
    let mood = JamendoMood::load(&data.join("jamendo-mood")).unwrap();
    assert_eq!(mood.tags.len(), 56);
    assert_eq!(mood.tag_text_embeddings.dim(), (56, 384));
    assert_eq!(mood.pairs.len(), 137);
    assert_eq!(mood.tags[0], "action");
    assert_eq!(mood.tag_texts[0], "action music");
    let train = mood.split("train").unwrap();
    let valid = mood.split("valid").unwrap();
    assert_eq!(train.items.dim(), (2925, 56));
    assert_eq!(valid.items.dim(), (468, 56));
    // tags.tsv's own positive counts equal the label columns.
    let table = diff4steer_eval::io::tsv::Table::read(&data.join("jamendo-mood/tags.tsv")).unwrap();
    let n_train: Vec<usize> = table.parse_column("n_train").unwrap();
    let n_valid: Vec<usize> = table.parse_column("n_valid").unwrap();
    for t in 0..56 {
        assert_eq!(train.relevant(&[t]).len(), n_train[t], "tag {t} train");
        assert_eq!(valid.relevant(&[t]).len(), n_valid[t], "tag {t} valid");
    }
    for pair in &mood.pairs {
        assert_eq!(train.relevant(&[pair.a, pair.b]).len(), pair.count_train);
        assert_eq!(valid.relevant(&[pair.a, pair.b]).len(), pair.count_valid);
    }
    // Artists never straddle the split.
    let train_artists: std::collections::HashSet<&String> = train.artist_ids.iter().collect();
    assert!(valid.artist_ids.iter().all(|a| !train_artists.contains(a)));
    // Text embeddings are unit vectors.
    for row in mood.tag_text_embeddings.rows() {
        let norm: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
    }
    // A split that does not exist is a typed error naming the file.
    let err = mood.split("test").unwrap_err().to_string();
    assert!(err.contains("items_test.npy"), "{err}");
}
