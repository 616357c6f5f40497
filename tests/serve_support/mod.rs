//! Starts the real `mscr serve` binary as a child process, for the serving tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A child process that is killed (SIGKILL) when dropped, so a failing test
/// leaves no server or campaign running.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `mscr serve --model MODEL --addr ADDR EXTRA...` and returns it with
/// its base URL (`http://IP:PORT/v1`) once it prints that it is serving.
/// `127.0.0.1:0` picks a free port.
pub fn serve(model: &str, addr: &str, extra: &[&str]) -> (Proc, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mscr"))
        .args(["serve", "--model", model, "--addr", addr])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mscr serve");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let child = Proc(child);
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        // "serving \"MODEL\" on http://IP:PORT/v1 (Ctrl-C to stop)"
        if let Some(i) = line.find("http://") {
            let base = line[i..].split_whitespace().next().unwrap().to_string();
            // Keep draining its stderr so the server never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return (child, base);
        }
    }
    panic!("mscr serve did not start on {addr} (has `mscr setup` run?):\n{seen}");
}
