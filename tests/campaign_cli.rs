//! `mscr campaign` through the real binary: spec errors name the key and the
//! file, missing inputs are reported before any work, shards merge, and a
//! finished folder is not overwritten without --resume.

#[path = "report_support/mod.rs"]
mod report_support;
use report_support::*;
use std::path::Path;
use std::process::{Command, Output};

fn campaign(args: &[&str]) -> Output {
    Command::new(mscr_bin())
        .arg("campaign")
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn unknown_keys_and_components_are_named_with_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write(
        tmp.path(),
        "typo.toml",
        "models = [\"smollm2-135m-instruct\"]\ndatasets = [\"asdiv\"]\nlimt = 40\n[[attacks]]\nconfig = \"mscr.toml\"\n",
    );
    let o = campaign(&["run", &spec]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("typo.toml") && e.contains("`limt`") && e.contains("`limit`"),
        "{e}"
    );

    let spec = write(
        tmp.path(),
        "kind.toml",
        "models = [\"m\"]\ndatasets = [\"d\"]\n[[transforms]]\nkind = \"prune-heads\"\n[[attacks]]\nconfig = \"mscr.toml\"\n",
    );
    let e = stderr(&campaign(&["run", &spec]));
    assert!(
        e.contains("kind.toml") && e.contains("prune-heads") && e.contains("identity"),
        "{e}"
    );
}

#[test]
fn missing_model_dataset_and_attack_are_reported_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write(
        tmp.path(),
        "missing.toml",
        "models = [\"models/nope.gguf\"]\ndatasets = [\"data/nope.jsonl\"]\nout = \"run\"\n[[attacks]]\nconfig = \"no-such-attack.toml\"\n",
    );
    let o = campaign(&["run", &spec]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    for needle in [
        "nope.gguf",
        "nope.jsonl",
        "no-such-attack.toml",
        "cannot start",
    ] {
        assert!(e.contains(needle), "missing `{needle}` in: {e}");
    }
    assert!(
        !tmp.path().join("run").exists(),
        "work started despite missing inputs"
    );
}

#[test]
fn bad_shard_is_a_readable_error() {
    let o = campaign(&["run", "attacks/quickstart.toml", "--shard", "5/4"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("5/4"), "{}", stderr(&o));
}

#[test]
fn merge_combines_shards_and_refuses_conflicts() {
    let tmp = tempfile::tempdir().unwrap();
    let cells = sample_cells();
    // Split every cell's records into two shards by the same rule the runner uses.
    let shard = |i| {
        let s = mscr::campaign::Shard { index: i, count: 2 };
        cells
            .iter()
            .map(|(k, b, r)| {
                (
                    k.clone(),
                    *b,
                    r.iter().filter(|x| s.owns(&x.id)).cloned().collect(),
                )
            })
            .collect::<Vec<_>>()
    };
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    write_store(&a, &shard(1));
    write_store(&b, &shard(2));
    let out = tmp.path().join("merged");
    let o = campaign(&[
        "merge",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("merged 96 records"), "{}", stderr(&o));
    assert!(out.join("report.html").is_file());
    let s = mscr::report::CampaignSummary::from_file(&out.join("summary.json")).unwrap();
    assert_eq!(
        s.cells.iter().map(|c| c.summary.questions).sum::<usize>(),
        96
    );
    // Each shard planned its share: the merged plan is their union, all finished.
    assert_eq!(s.complete, Some(true));

    // A folder whose record for the same item differs is refused, and nothing is written.
    let c = tmp.path().join("c");
    let mut other = shard(1);
    other[0].2[0].attacked_answer = Some("999".into());
    write_store(&c, &other);
    let o = campaign(&["merge", c.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("conflict"), "{}", stderr(&o));
    let store = mscr::campaign::Store::open_existing(&out).unwrap();
    assert_eq!(store.record_count().unwrap(), 96);
}
