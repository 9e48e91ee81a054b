//! The CSV files a person writes or edits (labels, id lists, splits) read the way a spreadsheet wrote them, and
//! core's errors rendered the way a front end names its settings.

use medpick_core::csv;
use medpick_core::Error;

fn file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("medpick-csv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn labels_come_from_the_named_columns_in_any_order_and_unlabelled_rows_are_skipped() {
    let p = file(
        "picks-labelled.csv",
        "label,rank,id,score\nbenign,1,\"a, \"\"left\"\".png\",0.5\n,2,b.png,0.4\n\"malignant, grade 2\",3,c.png,0.3\n",
    );
    let m = csv::read_labels(&p).unwrap();
    assert_eq!(m.len(), 2, "{m:?}");
    assert_eq!(m["a, \"left\".png"], "benign");
    assert_eq!(m["c.png"], "malignant, grade 2");
    assert!(!m.contains_key("b.png"), "an empty label is not labelled yet");
}

#[test]
fn labels_without_a_header_or_with_an_id_header_read_as_id_label_pairs() {
    let m = csv::read_labels(&file("plain.csv", "x.png,cat\ny.png,dog\n")).unwrap();
    assert_eq!((m["x.png"].as_str(), m["y.png"].as_str()), ("cat", "dog"));
    let m = csv::read_labels(&file("headed.csv", "id,class\nx.png,cat\n")).unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m["x.png"], "cat");
}

#[test]
fn an_id_labelled_twice_differently_is_an_error_naming_the_line() {
    let p = file("conflict.csv", "id,label\nx.png,cat\nx.png,cat\ny.png,dog\nx.png,dog\n");
    let e = csv::read_labels(&p).unwrap_err().to_string();
    assert!(e.contains("conflict.csv") && e.contains("line 5") && e.contains("x.png"), "{e}");
}

#[test]
fn id_lists_take_a_picks_file_s_id_column_or_whole_lines() {
    let picks = file("picks.csv", "rank,id,score,strategy,seed\n1,\"a, b.png\",0.5,coreset,0\n2,c.png,0.4,coreset,0\n");
    assert_eq!(csv::read_id_list(&picks).unwrap(), ["a, b.png", "c.png"]);
    let plain = file("ids.txt", "a, b.png\n\nc.png\n");
    assert_eq!(csv::read_id_list(&plain).unwrap(), ["a, b.png", "c.png"]);
    let headed = file("ids-headed.csv", "id\nc.png\nd.png\n");
    assert_eq!(csv::read_id_list(&headed).unwrap(), ["c.png", "d.png"]);
}

#[test]
fn split_files_round_trip_ids_with_commas_quoted_or_not() {
    use medpick_core::manifest::{read_split, write_split, Split};
    let p = std::env::temp_dir().join(format!("medpick-csv-split-{}.csv", std::process::id()));
    let split = vec![("a, \"b\".png".to_string(), Split::Train), ("c.png".to_string(), Split::Test)];
    write_split(&p, &split, true).unwrap();
    let m = read_split(&p).unwrap();
    assert_eq!((m["a, \"b\".png"], m["c.png"]), (Split::Train, Split::Test));
    // Written by hand, the comma left unquoted: the split is the last cell.
    let m = read_split(&file("hand.split.csv", "id,split\nx, y.png,val\n")).unwrap();
    assert_eq!(m["x, y.png"], Split::Val);
    let e = read_split(&file("bad.split.csv", "id,split\nx.png,holdout\n")).unwrap_err().to_string();
    assert!(e.contains("bad.split.csv") && e.contains("line 2") && e.contains("holdout"), "{e}");
}

#[test]
fn errors_name_settings_and_a_front_end_spells_them() {
    let e = Error::setting("scores", "random,bald", "unknown score bald for ‹task› seg");
    assert_eq!(e.to_string(), "scores random,bald: unknown score bald for task seg");
    let wrapped = Error::Context { context: "bench loop".into(), inner: Box::new(e) };
    let cli = wrapped.render(&|_| None, &|n| format!("--{n}"));
    assert_eq!(cli, "bench loop: --scores random,bald: unknown score bald for --task seg");
    let exists = Error::Exists { path: "out.csv".into() };
    let front = |e: &Error| matches!(e, Error::Exists { .. }).then(|| format!("{e} (pass --force)"));
    assert_eq!(exists.render(&front, &|n| n.to_string()), "out.csv already exists (pass --force)");
}
