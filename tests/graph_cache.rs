//! The decoder graph cache: an outdated cached graph (here: one cached before
//! graph sizes were recorded) is replaced by the rebuilt one, not rebuilt again
//! on every load with the outdated folder left in place.

mod common;

use common::*;
use mscr::runtime::decoder::{self, WeightFormat};

#[test]
fn an_outdated_cached_graph_is_replaced_not_rebuilt_on_every_load() {
    let home = tempfile::tempdir().unwrap();
    // The graph cache lives under MSCR_HOME; ONNX Runtime stays where setup put it.
    let ort = mscr::setup::ort_library(false);
    // SAFETY: the only test of this file; set before any session is opened.
    unsafe {
        std::env::set_var("ORT_DYLIB_PATH", ort);
        std::env::set_var("MSCR_HOME", home.path());
    }
    let m = tiny_model(&Tiny::default(), 13);
    let opts = decoder::BuildOptions {
        format: WeightFormat::Int8,
        max_positions: 256,
    };
    let (dir, info) = decoder::build_cached(&m, &opts).unwrap();
    assert!(info.params > 0);
    // As a graph cached before sizes were recorded: no `params`.
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("graph.json")).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("params");
    std::fs::write(dir.join("graph.json"), v.to_string()).unwrap();
    assert!(
        decoder::cached(&dir).is_none(),
        "the outdated graph must not count"
    );
    let (again, _) = decoder::build_cached(&m, &opts).unwrap();
    assert_eq!(again, dir);
    assert!(
        decoder::cached(&dir).is_some_and(|i| i.params == info.params),
        "the rebuilt graph replaced the outdated one"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}
