//! Pinned-URL dataset downloads from a loopback HTTP server (its own test
//! binary: it points MSCR_HOME at a temporary cache).

use mscr::data::{self, LoadOptions};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mscr-score-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Serves `body` for every request on a loopback port; returns the base URL.
fn serve(body: Vec<u8>, requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/jsonl\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    format!("http://{addr}")
}

#[test]
fn pinned_url_download() {
    let home = tmpdir("home");
    // SAFETY: the only test in this binary, so nothing reads the environment concurrently.
    unsafe { std::env::set_var("MSCR_HOME", &home) };
    let body = b"{\"question\":\"What is 2+2?\",\"answer\":\"2+2=4\\n#### 4\"}\n".to_vec();
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&body))
    };
    let base = serve(body, 1);
    let url = format!("{base}/gsm8k_mini.jsonl");
    let opts = LoadOptions {
        sha256: Some(sha.clone()),
        ..Default::default()
    };
    let d = data::load(&url, &opts).unwrap();
    assert_eq!(d.name, "gsm8k");
    assert_eq!(d.items[0].gold, "4");
    assert!(d.source.starts_with(&home));
    // The server answered once; a second load is served from the cache.
    let d2 = data::load(&url, &opts).unwrap();
    assert_eq!(d2.items, d.items);

    // Same URL shape, different content: a checksum mismatch, nothing cached.
    let base = serve(
        b"{\"question\":\"tampered\",\"answer\":\"#### 5\"}\n".to_vec(),
        1,
    );
    let url = format!("{base}/gsm8k_other.jsonl");
    let pin = "0".repeat(64);
    let opts = LoadOptions {
        sha256: Some(pin.clone()),
        ..Default::default()
    };
    let e = data::load(&url, &opts).unwrap_err().to_string();
    assert!(e.contains("checksum mismatch") && e.contains(&pin), "{e}");
    assert!(!data::fetch::cache_path(&url, &pin).exists());
    // No pin at all is refused before any request.
    let e = data::load(&url, &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("sha256"), "{e}");
    std::fs::remove_dir_all(&home).ok();
}
